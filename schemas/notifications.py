"""Notifications and topic subscriptions (seed 002): bodies of /notify and /subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from schemas.api import UserId

Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


class Targets(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    room_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    topic_subscribers: bool = False


class Notify(msgspec.Struct, forbid_unknown_fields=True):
    topic: Topic
    payload: dict[str, Any]
    targets: Targets


class NotificationCreated(msgspec.Struct):
    notification_id: str
    created_at: datetime


class Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    topic: Topic


class Subscription(msgspec.Struct):
    topic: str
    since: datetime


class NotificationFrame(msgspec.Struct):
    """What a connected target receives over the WebSocket."""

    notification_id: str
    topic: str
    payload: dict[str, Any]
    created_at: datetime
    type: str = "notification"
