"""HTTP routes, one module per resource."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "acks",
    "api_keys",
    "asyncapi",
    "auth",
    "dead_letters",
    "health",
    "message_changes",
    "messages",
    "notifications",
    "openapi",
    "rooms",
    "search",
    "tenants_admin",
    "tokens",
    "users",
    "webhooks",
]
