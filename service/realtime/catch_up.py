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
from itertools import accumulate

import msgspec

from eventstore.read import read_seqs
from eventstore.types import Queryable
from projections.messages import redact_deleted, retention_expired
from schemas.events import MemberRemoved
from schemas.upcasting import CURRENT_VERSIONS, VERSION_KEY
from service.realtime.frames import encode_event_frame

_encoder = msgspec.json.Encoder()

# RFC 3339 in UTC as msgspec writes a datetime: microseconds only when there are any.
_CREATED_AT = "replace(to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '')"
_FIELDS = f"(e.data - '{{type,{VERSION_KEY}}}'::text[])"
# What schemas/events.py's redaction leaves of a deleted message: its content empty, no meta, no attachments
# (fields at their defaults are not written).
_DATA = f"""CASE WHEN NOT e.redacted THEN {_FIELDS}
  WHEN e.type = 'message.sent' THEN {_FIELDS} - 'meta' - 'attachments' || '{{"content":""}}'
  ELSE {_FIELDS} || '{{"content":""}}' END"""

# A message's row has its message.sent's room and seq and created_at, so the page's sent messages need no look-up
# each: the room's deleted ones in the page's range come from one scan of the partial index `messages_deleted`,
# and retention compares the event's own time. Only an edit looks up its message.
_FRAMES = f"""
WITH page AS MATERIALIZED (
    SELECT e.seq, e.type, e.stream_id, e.data, e.metadata, e.created_at FROM events e
    WHERE e.stream_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $6
), deleted AS (
    SELECT m.seq FROM messages m
    WHERE m.room_id = $1 AND m.deleted_seq IS NOT NULL AND m.seq > $2 AND m.seq <= (SELECT max(p.seq) FROM page p)
), retained_after AS (
    SELECT $3::timestamptz - make_interval(days => r.retention_days) AS at FROM rooms r WHERE r.room_id = $1
), marked AS (
    SELECT p.*, CASE
        WHEN p.type = 'message.sent' THEN p.seq IN (SELECT d.seq FROM deleted d)
             OR coalesce(p.created_at < (SELECT ra.at FROM retained_after ra), false)
        WHEN p.type = 'message.edited' THEN EXISTS (
             SELECT FROM messages WHERE messages.message_id = p.data->>'message_id'
             AND (messages.deleted_seq IS NOT NULL OR {retention_expired('$3')}))
        ELSE false END AS redacted
    FROM page p
)
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
FROM marked e
"""
# The page as one row: Python slices the joined text instead of taking a row (and a string) per event.
_PAGE = f"""
SELECT array_agg(f.seq ORDER BY f.seq) AS seqs, array_agg(f.removed ORDER BY f.seq) AS removed,
       array_agg(coalesce(length(f.frame), 0) ORDER BY f.seq) AS lengths,
       array_agg(f.frame IS NULL ORDER BY f.seq) AS old,
       string_agg(coalesce(f.frame, ''), ',' ORDER BY f.seq) AS text
FROM ({_FRAMES}) f
"""


class FramePage:
    """Consecutive events of a room as the texts of their frames, joined by commas in one string."""

    def __init__(self, seqs: list[int], removed: list[bool], text: str, lengths: list[int]) -> None:
        self.seqs = seqs
        self.removed = removed
        self.text = text
        # where frame i begins in `text`; the last entry is one past the end (plus the comma it lacks)
        self.starts = [0, *accumulate(n + 1 for n in lengths)]

    def __len__(self) -> int:
        return len(self.seqs)

    def frame(self, i: int) -> str:
        """The text of frame i."""
        return self.text[self.starts[i]:self.starts[i + 1] - 1]

    def joined(self, i: int, j: int) -> str:
        """Frames i to j - 1, joined by commas."""
        return self.text[self.starts[i]:self.starts[j] - 1]

    def size(self, i: int) -> int:
        """The length of frame i's text."""
        return self.starts[i + 1] - self.starts[i] - 1


async def read_frames(
    conn: Queryable, room_id: str, *, after_seq: int, limit: int, user_id: str, now: datetime
) -> FramePage:
    """The room's events with seq > after_seq as event frames in seq order, at most `limit`, read as clients may
    read them at `now` (deleted and expired content redacted) and in the current shape of every type."""
    versions = _encoder.encode(CURRENT_VERSIONS).decode()
    row = await conn.fetchrow(_PAGE, room_id, after_seq, now, user_id, versions, limit)
    assert row is not None
    if row["seqs"] is None:
        return FramePage([], [], "", [])
    page = FramePage(row["seqs"], row["removed"], row["text"], row["lengths"])
    if any(row["old"]):
        page = await _upcast(conn, room_id, page, row["old"], user_id=user_id, now=now)
    return page


async def _upcast(
    conn: Queryable, room_id: str, page: FramePage, old: list[bool], *, user_id: str, now: datetime
) -> FramePage:
    seqs = [seq for seq, stale in zip(page.seqs, old, strict=True) if stale]
    events = await redact_deleted(conn, await read_seqs(conn, room_id, seqs), now=now)
    upcast = {e.seq: encode_event_frame(e) for e in events}
    removed = {e.seq for e in events if isinstance(e.event, MemberRemoved) and e.event.user_id == user_id}
    texts = [upcast[seq] if stale else page.frame(i) for i, (seq, stale) in enumerate(zip(page.seqs, old, strict=True))]
    flags = [seq in removed if stale else was for seq, stale, was in zip(page.seqs, old, page.removed, strict=True)]
    return FramePage(page.seqs, flags, ",".join(texts), [len(t) for t in texts])
