"""The HTTP edge: endpoint declarations, router, middleware, request helpers, error responses, OpenAPI."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "asyncapi",
    "bodies",
    "endpoints",
    "errors",
    "http_protocol",
    "middleware",
    "request",
    "router",
    "views",
    "ws_protocol",
]
