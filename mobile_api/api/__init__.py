"""The HTTP API: the FastAPI app, its routes, schemas and the claim views it returns."""
