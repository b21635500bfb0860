"""Logging (and, later, metrics)."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "health",
    "logs",
]
