"""The HTTP routes under /api/v1: each translates the request and delegates to an api module."""
