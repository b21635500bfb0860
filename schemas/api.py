"""HTTP request and response bodies; requests reject unknown fields so typos fail loudly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.events import RoomRole, RoomType

MAX_CONTENT_CHARS = 4000
# No spaces, '/' or control characters (PostgreSQL cannot store NUL).
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\s/\x00-\x1f\x7f]+$")]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
RoomName = Annotated[str, msgspec.Meta(max_length=200)]
# Length is checked by the domain rule so an over-long message gets its own code (MESSAGE_TOO_LONG).
Content = str


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CreateRoom(_Request):
    type: RoomType
    members: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    name: RoomName | None = None
    metadata: dict[str, Any] | None = None


class UpdateRoom(_Request):
    name: RoomName | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class AddMembers(_Request):
    user_ids: Annotated[list[UserId], msgspec.Meta(min_length=1, max_length=1000)]


class SendMessage(_Request):
    content: Content
    meta: dict[str, Any] | None = None
    client_msg_id: ClientMsgId | None = None


class Ack(_Request):
    room_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    seq: Annotated[int, msgspec.Meta(ge=0)]


class Room(msgspec.Struct):
    room_id: str
    type: RoomType
    unique_key: str | None
    name: str | None
    metadata: dict[str, Any] | None
    last_seq: int
    created_at: datetime


class Member(msgspec.Struct):
    user_id: str
    role: RoomRole
    joined_at: datetime


class SendResult(msgspec.Struct):
    message_id: str
    seq: int
    created_at: datetime


class Message(msgspec.Struct):
    message_id: str
    sender_id: str
    seq: int
    content: str
    meta: dict[str, Any] | None
    created_at: datetime
    client_msg_id: str | None = None


class RoomEvent(msgspec.Struct):
    """One entry of a room's raw log as clients sync it."""

    seq: int
    type: str
    actor: str | None
    created_at: datetime
    data: dict[str, Any]


class Success(msgspec.Struct):
    success: Literal[True] = True


class Health(msgspec.Struct):
    status: Literal["ok", "degraded"]
    uptime: str
    db_writable: bool
    nats_connected: bool
    # JetStream set up, relay and fan-out running: this instance delivers in real time.
    realtime_ready: bool
