"""Shipped default catalog, rules and triage policy (YAML; see CATALOG.md). No code."""
