"""Real-time delivery: the WebSocket gateway, the fan-out hub, presence, frames and NATS JetStream."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "catch_up",
    "delivery",
    "frames",
    "gateway",
    "hub",
    "jetstream",
    "nats_link",
    "presence",
]
