"""Catalogue and FAQ import (Shopify exports or Comptoir's own JSON), and the bundled demo shop."""
