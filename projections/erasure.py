"""Erasure in the read models: the same blanks a replay of the rewritten log would produce, applied in place.

`eventstore.erasure` rewrites the events; these statements bring every read model that holds content to
the state a replay would build from them, in the same transaction (tests/service/test_erasure.py checks
that a replay finds no difference).
"""

from __future__ import annotations

from collections.abc import Collection

from eventstore.erasure import blank_filenames
from eventstore.types import Connection, Queryable

# What an erased message reads as: no content, no meta, attachments without their file names.
_BLANK_MESSAGES = f"UPDATE messages SET content = '', meta = NULL, attachments = {blank_filenames('attachments')}"
_MESSAGES = f"{_BLANK_MESSAGES} WHERE tenant_id = $1 AND message_id = ANY($2::text[])"
# The uploads of the erased user (of everyone in the tenant when $2 is NULL), as a replay of their rewritten
# `media.upload_requested` builds them; the media cleanup then removes their objects and records it.
_MEDIA = """
UPDATE media SET filename = '', erased = true WHERE tenant_id = $1 AND ($2::text IS NULL OR uploaded_by = $2)
"""
# A deleted message has no document; the rest get the document of empty content.
_SEARCH = """
UPDATE message_search SET document = to_tsvector('simple', '')
WHERE tenant_id = $1 AND message_id = ANY($2::text[]) AND document IS NOT NULL
"""
_DEAD_LETTERS = """
UPDATE dead_letters SET job = NULL, error = '' WHERE tenant_id = $1 AND message_id = ANY($2::text[])
"""
_TENANT_MESSAGES = f"{_BLANK_MESSAGES} WHERE tenant_id = $1"
_TENANT_SEARCH = """
UPDATE message_search SET document = to_tsvector('simple', '') WHERE tenant_id = $1 AND document IS NOT NULL
"""
_TENANT_DEAD_LETTERS = "UPDATE dead_letters SET job = NULL, error = '' WHERE tenant_id = $1"
_TENANT_ROOMS = "UPDATE rooms SET name = NULL, metadata = NULL WHERE tenant_id = $1"

# The tables an erasure changes (a VACUUM afterwards drops their old row versions).
ERASED_TABLES = ("messages", "message_search", "dead_letters", "rooms", "media")


async def erase_messages(conn: Connection, tenant_id: str, user_id: str, message_ids: Collection[str]) -> None:
    """Blank the content of these messages (and the dead letters carrying them) and the user's uploads' file names
    in every read model."""
    ids = list(message_ids)
    for statement in (_MESSAGES, _SEARCH, _DEAD_LETTERS):
        await conn.execute(statement, tenant_id, ids)
    await conn.execute(_MEDIA, tenant_id, user_id)


async def erase_tenant(conn: Connection, tenant_id: str) -> None:
    """Blank every message, dead letter and room name and metadata of the tenant in the read models."""
    for statement in (_TENANT_MESSAGES, _TENANT_SEARCH, _TENANT_DEAD_LETTERS, _TENANT_ROOMS):
        await conn.execute(statement, tenant_id)
    await conn.execute(_MEDIA, tenant_id, None)


async def vacuum_erased(conn: Queryable) -> None:
    """Drop the old row versions an erasure left behind in the log and the read models (outside a transaction)."""
    await conn.execute(f"VACUUM events, {', '.join(ERASED_TABLES)}")
