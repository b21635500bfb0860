"""Which messages each medium is attached to: one row per (media, message), from `message.sent`.

The media cleanup and the media read check look messages up by media id here (a b-tree probe) instead of
through an index over the messages' attachment documents: a GIN over `jsonb_path_ops` added an entry per
attachment field to every send with attachments, and its pending list had to be merged in the append's
path. Whether a message is still live is read from `messages` (by its primary key), so deletions, room
deletions and retention need nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstore.types import Connection
from projections.base import apply_statements
from schemas.events import RecordedEvent

# A message's rows are written with its message.sent, once: repeats (replay twice) conflict and do nothing.
_INSERT = """
INSERT INTO message_attachments (tenant_id, media_id, message_id, room_id)
SELECT e.tenant_id, a.value->>'media_id', e.data->>'message_id', e.stream_id
FROM new_events e CROSS JOIN LATERAL jsonb_array_elements(e.data->'attachments') AS a(value)
WHERE e.type = 'message.sent' AND jsonb_typeof(e.data->'attachments') = 'array'
ON CONFLICT DO NOTHING
"""


class MessageAttachmentsProjection:
    name = "message_attachments"
    version = 1
    tables = ("message_attachments",)
    handles = frozenset({"message.sent"})
    ddl = """
    CREATE TABLE message_attachments (
        tenant_id  text NOT NULL,
        media_id   text NOT NULL,
        message_id text NOT NULL,
        room_id    text NOT NULL,
        PRIMARY KEY (tenant_id, media_id, message_id)
    );
    """

    sql = (_INSERT,)
    statements = sql

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await apply_statements(conn, self.statements, self.handles, events)
