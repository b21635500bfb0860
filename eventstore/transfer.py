"""Moving one tenant's log between databases: a streamed export to JSON Lines and its all-or-nothing import.

The export reads under one snapshot taken while appends are held out for an instant, so no append can
commit later at an earlier position: the tenant positions it wrote stay the tenant's first events for
good, and a later `--since` export continues exactly where this one ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import asyncpg
import msgspec

from eventstore.types import Connection
from schemas.errors import ImportRefused, TenantNotFound
from schemas.transfer import FORMAT_VERSION, ExportedEvent, ExportHeader, ExportLine, ExportTrailer

_PAGE = 2000
_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(ExportLine)

_READ_PAGE = """
SELECT position, stream_id, seq, created_at, type, data::text AS data, metadata::text AS metadata, idempotency_key
FROM events WHERE tenant_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""
# The position after which the tenant's events past tenant position `since` begin.
_POSITION_AT = """
SELECT coalesce((SELECT position FROM events WHERE tenant_id = $1 ORDER BY position OFFSET $2 - 1 LIMIT 1), 0)
"""
_INSERT = """
INSERT INTO events (stream_id, seq, tenant_id, type, data, metadata, idempotency_key, created_at)
SELECT e.stream_id, e.seq, $1, e.type, e.data::jsonb, e.metadata::jsonb, e.idempotency_key, e.created_at
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
     WITH ORDINALITY AS e(stream_id, seq, type, data, metadata, idempotency_key, created_at, n)
ORDER BY e.n
"""
# Every stream the import touched must hold seqs 1..N without a hole and belong to this tenant alone.
_BROKEN_STREAMS = """
SELECT stream_id FROM events WHERE stream_id = ANY($2::text[])
GROUP BY stream_id HAVING count(*) <> max(seq) OR min(seq) <> 1 OR bool_or(tenant_id <> $1) LIMIT 5
"""
_UPSERT_STREAMS = """
INSERT INTO streams (stream_id, tenant_id, last_seq)
SELECT stream_id, $1, max(seq) FROM events WHERE stream_id = ANY($2::text[]) GROUP BY stream_id
ON CONFLICT (stream_id) DO UPDATE SET last_seq = EXCLUDED.last_seq WHERE streams.tenant_id = EXCLUDED.tenant_id
"""


class Checksum:
    """SHA-256 over the bytes of the lines before the trailer."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, line: bytes) -> bytes:
        self._hash.update(line)
        return line

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def export_tenant(pool: asyncpg.Pool, tenant_id: str, *, since: int = 0) -> AsyncIterator[bytes]:
    """The export file of `tenant_id`'s events after tenant position `since`, line by line (each ends in a newline)."""
    async with pool.acquire() as conn, pool.acquire() as snapshot_holder:
        snapshot = await _snapshot_without_appends_in_flight(snapshot_holder)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            try:
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            finally:
                await snapshot_holder.execute("COMMIT")
            name = await conn.fetchval("SELECT name FROM tenants WHERE tenant_id = $1", tenant_id)
            total = await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant_id)
            if name is None:
                raise TenantNotFound(f"no tenant {tenant_id}")
            since = min(since, total)
            checksum = Checksum()
            header = ExportHeader(FORMAT_VERSION, tenant_id, name, since, total)
            yield checksum.add(_encoder.encode(header) + b"\n")
            position = await conn.fetchval(_POSITION_AT, tenant_id, since) if since else 0
            count, streams = 0, set()
            while rows := await conn.fetch(_READ_PAGE, tenant_id, position, _PAGE):
                page = bytearray()
                for row in rows:
                    _encoder.encode_into(_exported(row), page, -1)
                    page += b"\n"
                    streams.add(row["stream_id"])
                yield checksum.add(bytes(page))
                count += len(rows)
                position = rows[-1]["position"]
            trailer = ExportTrailer(count, len(streams), checksum.hexdigest())
            yield _encoder.encode(trailer) + b"\n"


async def _snapshot_without_appends_in_flight(conn: Connection) -> str:
    # Every append locks its `streams` rows (FOR UPDATE: ROW SHARE) before it takes positions, and EXCLUSIVE
    # conflicts with that: it waits for appends in flight and holds new ones out while the snapshot is
    # taken (as replay's swap does); the caller commits as soon as it adopted the snapshot.
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; LOCK TABLE streams IN EXCLUSIVE MODE")
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))


def _exported(row: asyncpg.Record) -> ExportedEvent:
    return ExportedEvent(
        stream_id=row["stream_id"], seq=row["seq"], created_at=row["created_at"], type=row["type"],
        data=msgspec.Raw(row["data"].encode()), metadata=msgspec.Raw(row["metadata"].encode()),
        idempotency_key=row["idempotency_key"],
    )


@dataclass
class Imported:
    tenant_id: str
    events: int
    streams: int
    # The imported events are the tenant's events after this global position of the target database.
    after_position: int


async def import_tenant(conn: Connection, lines: Iterable[bytes]) -> Imported:
    """Write an export file's events into the log; the caller's transaction makes it all or nothing.

    Raises ImportRefused (the caller rolls back) for another format version, a bad checksum or count,
    a missing trailer, a tenant whose events here do not end at the file's `since`, or streams whose
    seqs would not run 1..N.
    """
    source = iter(lines)
    first = next(source, b"")
    header = _decode(first)
    if not isinstance(header, ExportHeader):
        raise ImportRefused("the file does not begin with a header")
    tenant_id = header.tenant_id
    held = await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant_id)
    if held != header.since:
        raise ImportRefused(f"tenant {tenant_id} holds {held} events here; the file continues after {header.since}")
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id, header.tenant_name,
    )
    after_position = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    checksum = Checksum()
    checksum.add(first)
    batch: list[ExportedEvent] = []
    streams: set[str] = set()
    count = 0
    trailer: ExportTrailer | None = None
    for raw in source:
        if trailer is not None:
            raise ImportRefused("lines after the trailer")
        line = _decode(raw)
        if isinstance(line, ExportTrailer):
            trailer = line
            continue
        if not isinstance(line, ExportedEvent):
            raise ImportRefused("a second header")
        checksum.add(raw)
        batch.append(line)
        streams.add(line.stream_id)
        if len(batch) >= _PAGE:
            count += await _insert(conn, tenant_id, batch)
    count += await _insert(conn, tenant_id, batch)
    _check_trailer(trailer, checksum, count, len(streams), header)
    await _check_streams(conn, tenant_id, sorted(streams))
    await _move_bot_secrets(conn, tenant_id, after_position)
    return Imported(tenant_id, count, len(streams), after_position)


# Files exported before migration 071 carry bot webhook secrets in the bot events: as that migration does,
# each goes into a bot_secrets row and its event names it instead, before any read model sees it.
_BOT_SECRETS = """
INSERT INTO bot_secrets (tenant_id, secret_id, bot_id, secret, created_at)
SELECT e.tenant_id, 'bsec_log' || e.position, e.data->>'bot_id', e.data->>'secret', e.created_at
FROM events e
WHERE e.tenant_id = $1 AND e.position > $2 AND e.type IN ('bot.registered', 'bot.updated')
  AND e.data->>'secret' IS NOT NULL
"""
_BOT_EVENTS = """
UPDATE events e SET data = CASE WHEN e.data->>'secret' IS NOT NULL
                                THEN (e.data - 'secret') || jsonb_build_object('secret_id', 'bsec_log' || e.position)
                                ELSE e.data - 'secret' END
WHERE e.tenant_id = $1 AND e.position > $2 AND e.type IN ('bot.registered', 'bot.updated') AND e.data ? 'secret'
"""


async def _move_bot_secrets(conn: Connection, tenant_id: str, after_position: int) -> None:
    await conn.execute(_BOT_SECRETS, tenant_id, after_position)
    await conn.execute(_BOT_EVENTS, tenant_id, after_position)


def _decode(raw: bytes) -> ExportLine:
    try:
        line = _line_decoder.decode(raw)
    except msgspec.DecodeError as e:
        raise ImportRefused(f"not a line of an export file: {e}") from None
    if isinstance(line, ExportHeader) and line.format != FORMAT_VERSION:
        raise ImportRefused(f"export format {line.format}; this roomlog reads format {FORMAT_VERSION}")
    return line


async def _insert(conn: Connection, tenant_id: str, batch: list[ExportedEvent]) -> int:
    if not batch:
        return 0
    try:
        await conn.execute(
            _INSERT, tenant_id, [e.stream_id for e in batch], [e.seq for e in batch], [e.type for e in batch],
            [bytes(e.data).decode() for e in batch], [bytes(e.metadata).decode() for e in batch],
            [e.idempotency_key for e in batch], [e.created_at for e in batch],
        )
    except asyncpg.UniqueViolationError as e:
        raise ImportRefused(f"an event the database already holds ({e.constraint_name})") from None
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as e:
        raise ImportRefused(f"an event the log cannot hold: {e}") from None
    written = len(batch)
    batch.clear()
    return written


def _check_trailer(
    trailer: ExportTrailer | None, checksum: Checksum, events: int, streams: int, header: ExportHeader
) -> None:
    if trailer is None:
        raise ImportRefused("the file has no trailer (cut short?)")
    if trailer.sha256 != checksum.hexdigest():
        raise ImportRefused("checksum mismatch: the file is not the one that was exported")
    if (trailer.events, trailer.streams) != (events, streams) or header.since + events != header.until:
        raise ImportRefused("the file's counts do not match its events")


async def _check_streams(conn: Connection, tenant_id: str, streams: list[str]) -> None:
    broken = [r["stream_id"] for r in await conn.fetch(_BROKEN_STREAMS, tenant_id, streams)]
    if broken:
        raise ImportRefused(f"streams whose seqs would not run 1..N or that another tenant owns: {broken}")
    await conn.execute(_UPSERT_STREAMS, tenant_id, streams)
