"""Every msgspec type roomlog speaks: events, API bodies, errors and configuration."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "accounts",
    "api",
    "config",
    "delivery",
    "errors",
    "events",
    "notifications",
    "realtime",
    "roles",
    "tenants",
    "users",
    "webhooks",
]
