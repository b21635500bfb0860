"""Message search read model: a full-text document per message, kept current with edits and deletions.

A catch-up projection (projections/catchup.py): it follows the global log a moment behind the appends,
so indexing never slows a send down. The 'simple' text search configuration (lower-cased words, no
stemming, no stop words) works the same for every language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from eventstore.types import Connection, Queryable
from projections.base import apply_statements
from schemas.events import RecordedEvent

# Each statement over the batch's rows (`new_events`), in this order; each is idempotent, and an older
# event applied after a newer one changes nothing (changed_seq), so a re-applied batch is harmless.
_INSERT_SENT = """
INSERT INTO message_search (message_id, room_id, tenant_id, seq, sender_id, created_at, document, changed_seq)
SELECT e.data->>'message_id', e.stream_id, e.tenant_id, e.seq, e.data->>'sender_id', e.created_at,
       to_tsvector('simple', e.data->>'content'), e.seq
FROM new_events e WHERE e.type = 'message.sent'
ON CONFLICT DO NOTHING
"""
_APPLY_EDITS = """
UPDATE message_search s SET document = to_tsvector('simple', c.content), changed_seq = c.seq
FROM (SELECT DISTINCT ON (e.data->>'message_id')
             e.data->>'message_id' AS message_id, e.seq, e.data->>'content' AS content
      FROM new_events e WHERE e.type = 'message.edited' ORDER BY e.data->>'message_id', e.seq DESC) c
WHERE s.message_id = c.message_id AND s.changed_seq < c.seq AND s.document IS NOT NULL
"""
# A deleted message keeps its row without a document, so an edit applied late cannot bring it back.
_APPLY_DELETIONS = """
UPDATE message_search s SET document = NULL, changed_seq = greatest(s.changed_seq, e.seq)
FROM new_events e
WHERE e.type = 'message.deleted' AND s.message_id = e.data->>'message_id' AND s.document IS NOT NULL
"""

# The filters of a search ($4 room, $5 sender, $6 after, $7 before) over the caller's rooms; a message
# deleted since it was indexed, in a deleted room or past its room's retention at $8 (now) is left out,
# even before the index has caught up.
_MATCHES = """
FROM websearch_to_tsquery('simple', $3) AS q,
     message_search s
JOIN members mb ON mb.room_id = s.room_id AND mb.user_id = $2 AND mb.active
JOIN messages m ON m.message_id = s.message_id AND m.deleted_seq IS NULL
JOIN rooms r ON r.room_id = s.room_id
WHERE s.document @@ q AND s.tenant_id = $1 AND ($4::text IS NULL OR s.room_id = $4)
  AND ($5::text IS NULL OR s.sender_id = $5)
  AND ($6::timestamptz IS NULL OR s.created_at > $6) AND ($7::timestamptz IS NULL OR s.created_at < $7)
  AND NOT coalesce(m.created_at < $8::timestamptz - make_interval(days => r.retention_days), false)
"""
# Newest first; (created_at, message_id) orders every hit, so a cursor of the last one resumes exactly.
# Highlights: the content as it reads now, HTML-escaped, matches in <mark> — whole when short, else up
# to 3 fragments around the matches (the delimiter cannot occur in escaped text).
_SEARCH = """
SELECT s.message_id, s.room_id, s.seq, s.sender_id, s.created_at, m.message_type, m.content, m.edited_at,
       m.attachments::text AS attachments,
       CASE WHEN char_length(m.content) <= 200
            THEN ts_headline('simple', x.escaped, q, 'StartSel=<mark>, StopSel=</mark>, HighlightAll=true')
            ELSE ts_headline('simple', x.escaped, q, 'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, '
                                                     'MaxFragments=3, FragmentDelimiter="<|>"')
       END AS highlights
""" + _MATCHES.replace(
    "JOIN messages m ON m.message_id = s.message_id AND m.deleted_seq IS NULL",
    "JOIN messages m ON m.message_id = s.message_id AND m.deleted_seq IS NULL\n"
    "CROSS JOIN LATERAL (SELECT replace(replace(replace(m.content, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"
    " AS escaped) x",
) + """
  AND ($9::timestamptz IS NULL OR (s.created_at, s.message_id) < ($9, $10))
ORDER BY s.created_at DESC, s.message_id DESC
LIMIT $11
"""
_COUNT = "SELECT count(*)" + _MATCHES
HIGHLIGHT_DELIMITER = "<|>"


class SearchProjection:
    name = "search"
    version = 1
    tables = ("message_search",)
    handles = frozenset({"message.sent", "message.edited", "message.deleted"})
    sql = None  # a catch-up projection: never inside the append
    statements = (_INSERT_SENT, _APPLY_EDITS, _APPLY_DELETIONS)
    ddl = """
    CREATE TABLE message_search (
        message_id  text PRIMARY KEY,
        room_id     text NOT NULL,
        tenant_id   text NOT NULL,
        seq         bigint NOT NULL,
        sender_id   text NOT NULL,
        created_at  timestamptz NOT NULL,
        document    tsvector,
        changed_seq bigint NOT NULL
    );
    CREATE INDEX message_search_document ON message_search USING gin (document);
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await apply_statements(conn, self.statements, self.handles, events)


@dataclass(frozen=True)
class SearchFilters:
    """What narrows a search besides its words: a room, a sender, a time window (exclusive bounds)."""

    room_id: str | None = None
    from_user_id: str | None = None
    after: datetime | None = None
    before: datetime | None = None


async def search_messages(
    conn: Queryable, tenant_id: str, user_id: str, query: str, filters: SearchFilters, *, limit: int,
    older_than: tuple[datetime, str] | None = None, now: datetime | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """The newest `limit` messages matching `query` (web search syntax: words, "phrases", -not, or) in the
    user's rooms, older than the `older_than` (created_at, message_id) when given, and how many match in all.

    Rows: message_id, room_id, seq, sender_id, created_at, message_type, content, edited_at, attachments and
    highlights (HTML-escaped fragments joined by HIGHLIGHT_DELIMITER, matches in <mark>).
    """
    args = (tenant_id, user_id, query, filters.room_id, filters.from_user_id, filters.after, filters.before, now)
    cursor = older_than or (None, None)
    rows = await conn.fetch(_SEARCH, *args, *cursor, limit)
    total = await conn.fetchval(_COUNT, *args)
    return rows, int(total)
