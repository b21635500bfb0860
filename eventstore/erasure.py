"""Erasure: the one case where stored events change. Content is blanked in place; the log keeps its shape.

Every erased event keeps its position, stream, seq, type, ids and timestamps; only its content goes
(`content` and attachments' file names emptied, `meta`, a dead letter's `job` or a notification's `payload`
removed, an upload's file name emptied) and it is marked
`"erased": true`. A `content.erased` event in the tenant's erasures stream records the fact. Read models
are then rebuilt from the rewritten log by the caller, so a later replay reproduces the erased state.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore.append import NOTIFY_CHANNEL
from eventstore.types import Connection, Queryable
from schemas.events import ContentErased, EventMetadata, encode_event, encode_metadata


def blank_filenames(attachments: str) -> str:
    """SQL for a message's `attachments` (jsonb) with every file name emptied, in order; anything else as it is.
    The log's rewrite and the read models' blanking use this one expression, so a replay builds what they leave."""
    return (f"CASE WHEN jsonb_typeof({attachments}) = 'array' THEN coalesce((SELECT jsonb_agg(a.v || "
            f"'{{\"filename\": \"\"}}' ORDER BY a.i) FROM jsonb_array_elements({attachments}) WITH ORDINALITY "
            f"AS a(v, i)), '[]') ELSE {attachments} END")


_SENT_ATTACHMENTS = blank_filenames("data->'attachments'")
# What each kind of event loses. Message events and uploads are erased for their author (--user) or the whole
# tenant; the rest only with the whole tenant, except dead letters, which follow the messages they carry.
_REWRITE = {
    "message.sent": "(data - 'meta') || '{\"content\": \"\", \"erased\": true}'"
                    f" || CASE WHEN data ? 'attachments' THEN jsonb_build_object('attachments', {_SENT_ATTACHMENTS})"
                    " ELSE '{}' END",
    "message.edited": "data || '{\"content\": \"\", \"erased\": true}'",
    # An upload's file name is the uploader's words too; its bytes go with the media cleanup (the media read
    # model's `erased`).
    "media.upload_requested": "data || '{\"filename\": \"\", \"erased\": true}'",
    "delivery.failed": "(data - 'job') || '{\"error\": \"\", \"erased\": true}'",
    "notification.sent": "data || '{\"payload\": {}, \"erased\": true}'",
    "room.created": "(data - 'name' - 'metadata') || '{\"erased\": true}'",
    "room.updated": "(data - 'name' - 'metadata') || '{\"erased\": true}'",
}
_CASES = " ".join(f"WHEN '{t}' THEN {sql}" for t, sql in _REWRITE.items())

_ERASE_USER = f"""
WITH messages AS (
    UPDATE events SET data = CASE type {_CASES} END
    WHERE tenant_id = $1 AND NOT data ? 'erased'
      AND ((type = 'message.sent' AND data->>'sender_id' = $2) OR (type = 'message.edited' AND data->>'edited_by' = $2)
           OR (type = 'media.upload_requested' AND data->>'uploaded_by' = $2))
    RETURNING position, data->>'message_id' AS message_id
), dead_letters AS (
    UPDATE events SET data = CASE type {_CASES} END
    WHERE tenant_id = $1 AND type = 'delivery.failed' AND NOT data ? 'erased'
      AND data->>'message_id' IN (SELECT message_id FROM messages)
    RETURNING position, data->>'message_id' AS message_id
)
TABLE messages UNION ALL TABLE dead_letters
"""
_ERASE_TENANT = f"""
UPDATE events SET data = CASE type {_CASES} END
WHERE tenant_id = $1 AND type = ANY($2::text[]) AND NOT data ? 'erased'
RETURNING position, data->>'message_id' AS message_id
"""
_RECORD = """
WITH stream AS (
    INSERT INTO streams (stream_id, tenant_id, last_seq) VALUES ($1, $2, 1)
    ON CONFLICT (stream_id) DO UPDATE SET last_seq = streams.last_seq + 1
    RETURNING last_seq
)
INSERT INTO events (stream_id, seq, tenant_id, type, data, metadata)
SELECT $1, last_seq, $2, 'content.erased', $3::jsonb, $4::jsonb FROM stream
RETURNING position
"""


def erasures_stream(tenant_id: str) -> str:
    """The stream recording a tenant's erasures."""
    return f"erasures:{tenant_id}"


@dataclass
class Erased:
    # positions of the events whose content was erased, and the message ids those events named
    positions: list[int]
    message_ids: set[str]
    record_position: int


async def erase_content(conn: Connection, tenant_id: str, *, user_id: str | None, erased_by: str) -> Erased:
    """Blank the content of the tenant's events (those `user_id` wrote, when given) and record the erasure.

    Run it in a transaction: the rewrite and its record commit together. Erasing again finds nothing new.
    """
    if user_id is None:
        rows = await conn.fetch(_ERASE_TENANT, tenant_id, list(_REWRITE))
    else:
        rows = await conn.fetch(_ERASE_USER, tenant_id, user_id)
    record = ContentErased(erased_by=erased_by, events=len(rows), user_id=user_id)
    position = await conn.fetchval(
        _RECORD, erasures_stream(tenant_id), tenant_id, encode_event(record),
        encode_metadata(EventMetadata(tenant_id=tenant_id, actor=erased_by)),
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return Erased([r["position"] for r in rows], {r["message_id"] for r in rows if r["message_id"]}, position)


_ERASED_SO_FAR = """
WITH mine AS (
    SELECT position, data->>'message_id' AS message_id FROM events
    WHERE tenant_id = $1 AND data ? 'erased'
      AND ($2::text IS NULL OR data->>'sender_id' = $2 OR data->>'edited_by' = $2 OR data->>'uploaded_by' = $2)
)
TABLE mine UNION ALL
SELECT position, data->>'message_id' FROM events
WHERE $2::text IS NOT NULL AND tenant_id = $1 AND type = 'delivery.failed' AND data ? 'erased'
  AND data->>'message_id' IN (SELECT message_id FROM mine)
"""


async def erased_so_far(conn: Queryable, tenant_id: str, *, user_id: str | None) -> tuple[set[int], set[str]]:
    """Positions of every event erased for the user (the whole tenant when None) so far, and their message ids."""
    rows = await conn.fetch(_ERASED_SO_FAR, tenant_id, user_id)
    return {r["position"] for r in rows}, {r["message_id"] for r in rows if r["message_id"]}
