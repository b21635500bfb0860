"""API views of read-model rows: the one place a row becomes the response struct clients see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from schemas import api
from schemas.events import Attachment, ForwardedFrom, RecordedEvent, event_fields

_meta = msgspec.json.Decoder(dict[str, Any] | None)
_attachments = msgspec.json.Decoder(list[Attachment])


def message_view(row: asyncpg.Record, reactions: Sequence[asyncpg.Record]) -> api.Message:
    """The API view of a messages row and its `reaction_counts` rows."""
    return api.Message(
        message_id=row["message_id"], sender_id=row["sender_id"], seq=row["seq"], content=row["content"],
        meta=_meta.decode(row["meta"]) if row["meta"] is not None else None, created_at=row["created_at"],
        client_msg_id=row["client_msg_id"], edited_at=row["edited_at"], deleted_at=row["deleted_at"],
        reactions=[reaction_count(r) for r in reactions], thread_id=row["thread_id"], reply_count=row["reply_count"],
        last_reply_at=row["last_reply_at"], type=row["message_type"],
        attachments=_attachments.decode(row["attachments"]) if row["attachments"] is not None else [],
        mentions=list(row["mentions"]),
        forwarded_from=ForwardedFrom(room_id=row["forwarded_room_id"], message_id=row["forwarded_message_id"])
        if row["forwarded_message_id"] is not None else None,
    )


def reaction_count(row: asyncpg.Record) -> api.ReactionCount:
    """The API view of a `reaction_counts` row."""
    return api.ReactionCount(emoji=row["emoji"], count=row["count"], me=row["me"])


def room_event_view(event: RecordedEvent) -> api.RoomEvent:
    """The API view of one room log entry (already redacted for reading)."""
    return api.RoomEvent(seq=event.seq, type=event.type, actor=event.metadata.actor, created_at=event.created_at,
                         data=event_fields(event.event))
