"""The HTTP edge: endpoint declarations, router, middleware, request helpers, error responses, OpenAPI."""
