"""The API's routers: policyholder claims, the adjuster API, health and their dependencies."""
