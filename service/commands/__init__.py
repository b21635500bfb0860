"""Commands shared by REST, WebSocket and consumers: load what a rule needs, decide, append."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "messages",
    "metadata",
    "rooms",
]
