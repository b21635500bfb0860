"""How roomlog names its streams: a room's stream is its room id; a user's own stream carries their acks."""

from __future__ import annotations


def user_stream(tenant_id: str, user_id: str) -> str:
    """The stream of one user's own events (acks)."""
    return f"user:{tenant_id}:{user_id}"


def user_of_stream(stream_id: str) -> str:
    """The user id a user stream belongs to."""
    return stream_id.split(":", 2)[2]


def notifications_stream(tenant_id: str) -> str:
    """The stream of a tenant's notifications."""
    return f"notifications:{tenant_id}"


def deliveries_stream(tenant_id: str) -> str:
    """The stream of a tenant's failed, retried and discarded deliveries (dead letters)."""
    return f"deliveries:{tenant_id}"


def media_stream(tenant_id: str, media_id: str) -> str:
    """The stream of one upload: its request, then its confirmation or rejection."""
    return f"media:{tenant_id}:{media_id}"


def bot_stream(tenant_id: str, bot_id: str) -> str:
    """The stream of one bot's registration: registered, updated, deleted."""
    return f"bot:{tenant_id}:{bot_id}"


def media_limits_stream(tenant_id: str) -> str:
    """The stream of a tenant's own media limits."""
    return f"media-limits:{tenant_id}"
