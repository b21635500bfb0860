"""The roomlog service: HTTP API, command handlers, CLI and the embedded runtime."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "app",
    "cli",
    "commands",
    "config",
    "consumers",
    "domain",
    "identity",
    "observability",
    "ratelimit",
    "realtime",
    "routes",
    "runtime",
    "web",
]
