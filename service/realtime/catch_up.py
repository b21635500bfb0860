"""A room's log after a seq as WebSocket event frames, built by PostgreSQL from the stored JSON.

A catch-up sends thousands of events that Python need not look at: the stored payload already is the
frame's `data` (the struct's fields without defaults, as `event_fields` gives them) once its type tag and
version are taken out. So one query per page builds each frame's text — redacting what was deleted or is past
its room's retention, as `redact_deleted` does — and the gateway joins the texts without decoding them.
Only an event stored at an older version than its type's current one takes the Python path (decode, upcast,
redact, encode): that is what upcasters are for, and what keeps clients on current shapes.

This relies on the upcasting rule (schemas/upcasting.py): a change of an event's fields beyond adding one
with a default bumps its version. tests/service/test_catch_up.py checks the frames against the Python path.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import msgspec

from eventstore.read import read_seqs
from eventstore.types import Queryable
from projections.messages import redact_deleted, retention_expired
from schemas.events import MemberRemoved
from schemas.upcasting import CURRENT_VERSIONS, VERSION_KEY
from service.realtime.frames import encode_event_frame

_encoder = msgspec.json.Encoder()

# RFC 3339 in UTC as msgspec writes a datetime: microseconds only when there are any.
_CREATED_AT = (
    "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN extract(microseconds FROM e.created_at)::bigint % 1000000 = 0 THEN ''"
    " ELSE to_char(e.created_at AT TIME ZONE 'UTC', '.US') END"
)
_FIELDS = f"(e.data - 'type' - '{VERSION_KEY}')"
# What schemas/events.py's redaction leaves of a deleted message: its content empty, no meta, no attachments
# (fields at their defaults are not written).
_DATA = f"""CASE WHEN gone.redacted IS NULL THEN {_FIELDS}
  WHEN e.type = 'message.sent' THEN {_FIELDS} - 'meta' - 'attachments' || '{{"content":""}}'
  ELSE {_FIELDS} || '{{"content":""}}' END"""

_FRAMES = f"""
SELECT e.seq,
       e.type = 'member.removed' AND e.data->>'user_id' = $4 AS removed,
       CASE WHEN coalesce((e.data->>'{VERSION_KEY}')::int, 1) >= coalesce(($5::jsonb->>e.type)::int, 1) THEN
         '{{"type":' || to_json(CASE e.type WHEN 'message.sent' THEN 'message.new' ELSE e.type END)::text
         || ',"room_id":' || to_json(e.stream_id)::text
         || ',"seq":' || e.seq
         || ',"actor":' || coalesce(e.metadata->'actor', 'null'::jsonb)::text
         || ',"created_at":"' || {_CREATED_AT}
         || 'Z","data":' || ({_DATA})::text || '}}'
       END AS frame
FROM events e
LEFT JOIN LATERAL (
    SELECT true AS redacted FROM messages WHERE messages.message_id = e.data->>'message_id'
    AND (messages.deleted_seq IS NOT NULL OR {retention_expired('$3')})
) gone ON e.type IN ('message.sent', 'message.edited')
WHERE e.stream_id = $1 AND e.seq > $2
ORDER BY e.seq
LIMIT $6
"""


class CatchUpFrame(NamedTuple):
    """One event of the room as the text of its frame; `removed` when it removes the reading user."""

    seq: int
    text: str
    removed: bool


async def read_frames(
    conn: Queryable, room_id: str, *, after_seq: int, limit: int, user_id: str, now: datetime
) -> list[CatchUpFrame]:
    """The room's events with seq > after_seq as event frames in seq order, at most `limit`, read as clients may
    read them at `now` (deleted and expired content redacted) and in the current shape of every type."""
    versions = _encoder.encode(CURRENT_VERSIONS).decode()
    rows = await conn.fetch(_FRAMES, room_id, after_seq, now, user_id, versions, limit)
    frames = [CatchUpFrame(r["seq"], r["frame"], r["removed"]) for r in rows]
    old = [f.seq for f in frames if f.text is None]
    if old:
        frames = await _upcast(conn, room_id, frames, old, user_id=user_id, now=now)
    return frames


async def _upcast(
    conn: Queryable, room_id: str, frames: list[CatchUpFrame], seqs: list[int], *, user_id: str, now: datetime
) -> list[CatchUpFrame]:
    events = await redact_deleted(conn, await read_seqs(conn, room_id, seqs), now=now)
    texts = {e.seq: encode_event_frame(e) for e in events}
    removed = {e.seq for e in events if isinstance(e.event, MemberRemoved) and e.event.user_id == user_id}
    return [f if f.text is not None else CatchUpFrame(f.seq, texts[f.seq], f.seq in removed) for f in frames]
