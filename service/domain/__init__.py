"""The rules of the product as pure functions: state and command in, events (or a RoomlogError) out."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "acks",
    "authorization",
    "messages",
    "roles",
    "rooms",
    "urls",
    "users",
]
