"""Comptoir's shared library: settings, ports and their backends, and the domain."""
