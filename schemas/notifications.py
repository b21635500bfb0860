"""Notifications and topic subscriptions (seed 002): bodies of /notify and /subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.api import RoomId, UserId

Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


class Targets(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    room_id: RoomId | None = None
    topic_subscribers: bool = False

    def __post_init__(self) -> None:
        if not (self.user_ids or self.room_id or self.topic_subscribers):
            raise ValueError("name at least one target: user_ids, room_id or topic_subscribers")


# The rule of Targets.__post_init__, as the description states it.
_SOME_TARGET = {"anyOf": [
    {"properties": {"user_ids": {"minItems": 1}}, "required": ["user_ids"]},
    {"properties": {"room_id": {"type": "string"}}, "required": ["room_id"]},
    {"properties": {"topic_subscribers": {"const": True}}, "required": ["topic_subscribers"]},
]}


class Notify(msgspec.Struct, forbid_unknown_fields=True):
    topic: Topic
    payload: dict[str, Any]
    targets: Annotated[Targets, msgspec.Meta(extra_json_schema=_SOME_TARGET)]


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
    type: Literal["notification"] = "notification"
