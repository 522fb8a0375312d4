"""The adjuster workspace: server-rendered pages mounted at /adjuster on the API app."""
