"""The claimant's capture page: a guided photo capture and claim status, served at /capture."""
