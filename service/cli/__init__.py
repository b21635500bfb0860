"""The `roomlog` command and the embedded PostgreSQL and nats-server it starts."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "embedded",
    "main",
    "supervisor",
]
