"""Persistence: the database, its models and migrations, blob storage and the claim row's lock."""
