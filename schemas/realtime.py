"""WebSocket frames: what clients send (a tagged union on `type`) and what the server sends back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.api import MAX_ATTACHMENTS, MAX_MENTIONS, ClientMsgId, MediaId, MessageId, RoomId, SeqNumber, UserId
from schemas.events import MessageType
from schemas.presence import PresenceUpdated


class _ClientFrame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True):
    pass


class Sync(_ClientFrame, tag="sync"):
    """Subscribe to rooms and resume each after the given seq (0: from the start).

    `batch`: send what was missed as `events.batch` frames (many events each) instead of one frame per event;
    it holds for the connection until a later sync says otherwise. Live events stay one frame each.
    """

    rooms: dict[RoomId, SeqNumber]
    batch: bool = False


class Send(_ClientFrame, tag="send"):
    room_id: RoomId
    content: str
    client_msg_id: ClientMsgId
    meta: dict[str, Any] | None = None
    thread_id: MessageId | None = None
    message_type: MessageType = "text"  # `type` is the frame's own tag
    attachments: Annotated[list[MediaId], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = []
    mentions: Annotated[list[UserId], msgspec.Meta(max_length=MAX_MENTIONS)] = []


class _PositionFrame(_ClientFrame):
    room_id: RoomId
    seq: SeqNumber


class AckFrame(_PositionFrame, tag="ack"):
    """Received up to `seq`."""


class ReadFrame(_PositionFrame, tag="read"):
    """Read up to `seq` (which implies received)."""


class TypingStart(_ClientFrame, tag="typing.start"):
    room_id: RoomId


class TypingStop(_ClientFrame, tag="typing.stop"):
    room_id: RoomId


class Ping(_ClientFrame, tag="ping"):
    pass


ClientFrame = Sync | Send | AckFrame | ReadFrame | TypingStart | TypingStop | Ping


class EventFrame(msgspec.Struct):
    """A room event: `message.new` for a sent message, else the event's own type."""

    type: str
    room_id: str
    seq: int
    actor: str | None
    created_at: datetime
    data: dict[str, Any]


class EventBatch(msgspec.Struct):
    """Consecutive events of one room caught up from the log (for a client whose sync asked for batches).

    `events` are event frames in seq order without gaps; the next batch or live event of the room follows the
    last one. A batch holds up to about 256 KiB of events.
    """

    room_id: str
    events: list[EventFrame]
    type: Literal["events.batch"] = "events.batch"


class Sent(msgspec.Struct):
    client_msg_id: str
    message_id: str
    room_id: str
    seq: int
    created_at: datetime
    duplicate: bool
    type: Literal["send.ok"] = "send.ok"


class Synced(msgspec.Struct):
    """Every room of a sync frame has been caught up to this seq; live events follow."""

    rooms: dict[str, int]
    type: Literal["synced"] = "synced"


class AckReceived(msgspec.Struct):
    room_id: str
    user_id: str
    seq: int
    type: Literal["ack.received"] = "ack.received"


class ReadReceipt(msgspec.Struct):
    room_id: str
    user_id: str
    seq: int
    type: Literal["read.receipt"] = "read.receipt"


class Typing(msgspec.Struct):
    room_id: str
    user_id: str
    typing: bool
    type: Literal["typing"] = "typing"
    # With typing true: treat the user as no longer typing after this long without another frame.
    expires_in_ms: int | None = None


class ErrorFrame(msgspec.Struct):
    code: str
    message: str
    field: str | None = None
    room_id: str | None = None
    client_msg_id: str | None = None
    type: Literal["error"] = "error"


class Resync(msgspec.Struct):
    """The client fell too far behind; reconnect and sync from these seqs."""

    rooms: dict[str, int]
    type: Literal["resync"] = "resync"


class Shutdown(msgspec.Struct):
    reconnect_after_ms: int
    type: Literal["server.shutdown"] = "server.shutdown"


class Pong(msgspec.Struct):
    type: Literal["pong"] = "pong"


# What the server sends a connection; NotificationFrame (schemas/notifications.py) is one too.
ServerFrames = (
    EventFrame, EventBatch, Sent, Synced, AckReceived, ReadReceipt, Typing, PresenceUpdated, ErrorFrame, Resync,
    Shutdown, Pong,
)


class TypingSignal(msgspec.Struct):
    """Typing as it travels between instances over plain NATS."""

    room_id: str
    user_id: str
    typing: bool


class MessagingToken(msgspec.Struct):
    token: str
    expires_in: int
    ws_url: str
