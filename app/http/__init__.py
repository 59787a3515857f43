"""ASGI middleware and the OpenAPI schema: observability, body limit, SIGTERM drain."""
