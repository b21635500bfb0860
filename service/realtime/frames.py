"""The WebSocket frame of a room event, encoded once however many clients receive it."""

from __future__ import annotations

import msgspec

from schemas.events import MessageSent, RecordedEvent, event_fields
from schemas.realtime import EventFrame

_encoder = msgspec.json.Encoder()


def event_frame(event: RecordedEvent) -> EventFrame:
    """The frame a client gets for a room event: `message.new` for a sent message, else the event's type."""
    data = event_fields(event.event)
    kind = "message.new" if isinstance(event.event, MessageSent) else event.type
    return EventFrame(type=kind, room_id=event.stream_id, seq=event.seq, actor=event.metadata.actor,
                      created_at=event.created_at, data=data)


def encode_event_frame(event: RecordedEvent) -> str:
    """The frame as the text a socket sends."""
    return _encoder.encode(event_frame(event)).decode()


# A batch frame is cut once its events reach this many bytes of JSON (a client's frame limit is often 1 MiB).
BATCH_BYTES = 256 * 1024
_BATCH_HEAD = '{"type":"events.batch","room_id":'


def encode_event_batch(room_id: str, frames: str) -> str:
    """An `events.batch` frame (schemas.realtime.EventBatch) around event frames already encoded, joined by commas."""
    return f'{_BATCH_HEAD}{_encoder.encode(room_id).decode()},"events":[{frames}]}}'
