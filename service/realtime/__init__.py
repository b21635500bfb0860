"""Real-time delivery: the WebSocket gateway, the fan-out hub, presence, frames and NATS JetStream."""
