"""Media read model: one row per upload, from its stream (`media:<tenant>:<media_id>`).

`media.upload_requested` opens a pending row, `media.confirmed` fills in what the bytes really are,
`media.rejected` closes it, `media.removed` says its objects are gone. A row changes only for an event of
a higher seq than the one it last applied, so repeats and replays change nothing.
The bytes themselves live in the object store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import (
    Attachment,
    MediaConfirmed,
    MediaRejected,
    MediaRemoved,
    MediaUploadRequested,
    RecordedEvent,
)

_REQUESTED = """
INSERT INTO media (tenant_id, media_id, uploaded_by, filename, declared_type, size, object_key, room_id,
    expires_at, created_at, status, updated_seq, erased)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)
ON CONFLICT (tenant_id, media_id) DO NOTHING
"""
_CONFIRMED = """
UPDATE media SET status = 'confirmed', content_type = $3, sha256 = $4, size = $5, width = $6, height = $7,
    thumbnail_key = $8, confirmed_at = $9, updated_seq = $10
WHERE tenant_id = $1 AND media_id = $2 AND updated_seq < $10
"""
_REJECTED = """
UPDATE media SET status = 'rejected', rejected_code = $3, updated_seq = $4
WHERE tenant_id = $1 AND media_id = $2 AND updated_seq < $4
"""
_REMOVED = """
UPDATE media SET status = 'removed', updated_seq = $3 WHERE tenant_id = $1 AND media_id = $2 AND updated_seq < $3
"""
# Confirmed media whose uploader's content was erased, and ones that were attached to messages, all of them
# deleted since (the attachment rows stay after a deletion; whether a message is live is its messages row's).
_DETACHED = """
SELECT md.tenant_id, md.media_id, md.sha256, md.thumbnail_key, md.erased FROM media md
WHERE md.status = 'confirmed'
  AND (md.erased OR (
      EXISTS (SELECT 1 FROM message_attachments a WHERE a.tenant_id = md.tenant_id AND a.media_id = md.media_id)
      AND NOT EXISTS (SELECT 1 FROM message_attachments a JOIN messages m ON m.message_id = a.message_id
                      WHERE a.tenant_id = md.tenant_id AND a.media_id = md.media_id AND m.deleted_seq IS NULL)))
LIMIT $1
"""


class MediaProjection:
    name = "media"
    version = 2
    tables = ("media",)
    handles = frozenset({"media.upload_requested", "media.confirmed", "media.rejected", "media.removed"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE media (
        tenant_id     text NOT NULL,
        media_id      text NOT NULL,
        uploaded_by   text NOT NULL,
        filename      text NOT NULL,
        declared_type text NOT NULL,
        content_type  text,
        size          bigint NOT NULL,
        sha256        text,
        width         integer,
        height        integer,
        object_key    text NOT NULL,
        thumbnail_key text,
        room_id       text,
        status        text NOT NULL,
        rejected_code text,
        expires_at    timestamptz NOT NULL,
        created_at    timestamptz NOT NULL,
        confirmed_at  timestamptz,
        updated_seq   bigint NOT NULL,
        erased        boolean NOT NULL DEFAULT false,  -- the uploader's content was erased: the objects go
        PRIMARY KEY (tenant_id, media_id)
    );
    CREATE INDEX media_pending ON media (expires_at) WHERE status = 'pending';
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            event = rec.event
            if isinstance(event, MediaUploadRequested):
                await conn.execute(
                    _REQUESTED, rec.tenant_id, event.media_id, event.uploaded_by, event.filename, event.content_type,
                    event.size, event.object_key, event.room_id, event.expires_at, rec.created_at, rec.seq,
                    event.erased,
                )
            elif isinstance(event, MediaConfirmed):
                await conn.execute(
                    _CONFIRMED, rec.tenant_id, event.media_id, event.content_type, event.sha256, event.size,
                    event.width, event.height, event.thumbnail_key, rec.created_at, rec.seq,
                )
            elif isinstance(event, MediaRejected):
                await conn.execute(_REJECTED, rec.tenant_id, event.media_id, event.code, rec.seq)
            elif isinstance(event, MediaRemoved):
                await conn.execute(_REMOVED, rec.tenant_id, event.media_id, rec.seq)


async def fetch_media(conn: Queryable, tenant_id: str, media_id: str) -> asyncpg.Record | None:
    """One upload of the tenant, whatever its status; None when the tenant has no such media."""
    return await conn.fetchrow("SELECT * FROM media WHERE tenant_id = $1 AND media_id = $2", tenant_id, media_id)


async def stored_bytes(conn: Queryable, tenant_id: str, *, now: datetime) -> int:
    """Bytes the tenant holds or may still upload: confirmed media, and pending uploads not expired at `now`."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(size), 0) FROM media WHERE tenant_id = $1"
        " AND (status = 'confirmed' OR (status = 'pending' AND expires_at > $2))",
        tenant_id, now,
    )
    return int(value)


async def confirmed_media(conn: Queryable, tenant_ids: list[str], media_ids: list[str]) -> list[asyncpg.Record]:
    """The confirmed ones among the (tenant_ids[i], media_ids[i]) uploads, with the facts a message carries.

    One primary-key probe per pair; rows: tenant_id, media_id, uploaded_by and the columns of `attachment_of`.
    """
    # A LATERAL probe per pair: the plan stays an index lookup however the cached plan judged the table's size.
    return await conn.fetch(
        "SELECT md.* FROM unnest($1::text[], $2::text[]) AS k(tenant_id, media_id) CROSS JOIN LATERAL ("
        " SELECT m.tenant_id, m.media_id, m.uploaded_by, m.filename, m.content_type, m.size, m.sha256, m.width,"
        " m.height FROM media m WHERE m.tenant_id = k.tenant_id AND m.media_id = k.media_id"
        " AND m.status = 'confirmed') md",
        tenant_ids, media_ids,
    )


def attachment_of(row: asyncpg.Record) -> Attachment:
    """A confirmed media row as a message carries it."""
    return Attachment(media_id=row["media_id"], filename=row["filename"], content_type=row["content_type"],
                      size=row["size"], sha256=row["sha256"], width=row["width"], height=row["height"])


async def attached_in_a_room_of(conn: Queryable, tenant_id: str, media_id: str, user_id: str) -> bool:
    """Whether the media is attached to a live message of a room the user is an active member of."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM message_attachments a"
        " JOIN messages m ON m.message_id = a.message_id AND m.deleted_seq IS NULL"
        " JOIN members mb ON mb.room_id = a.room_id AND mb.user_id = $3 AND mb.active"
        " WHERE a.tenant_id = $1 AND a.media_id = $2)",
        tenant_id, media_id, user_id,
    ))


async def expired_uploads(conn: Queryable, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Uploads still pending after their expiry, oldest first."""
    return await conn.fetch(
        "SELECT tenant_id, media_id, object_key FROM media WHERE status = 'pending' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2",
        now, limit,
    )


async def detached_media(conn: Queryable, *, limit: int) -> list[asyncpg.Record]:
    """Confirmed media whose every message is deleted: their objects are due for removal."""
    return await conn.fetch(_DETACHED, limit)
