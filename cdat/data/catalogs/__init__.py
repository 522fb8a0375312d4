"""Shipped default price catalogs, one YAML file per currency."""
