"""The REST API under /api/v1: FastAPI app, authentication, tenant scope, routes."""
