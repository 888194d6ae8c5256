"""Catalogue and FAQ import (Shopify exports or Comptoir's own JSON), and the bundled demo shop."""

PRODUCTS = "products"
RESTOCKS = "restocks"  # product id -> {"at"}: when an import made it available again (campaigns)
