"""Appending to streams: gapless per-stream seq, idempotency keys, and group commit.

Every append waits in one queue. A few writer tasks each take everything queued and write it in one
transaction, so under load many appends share a commit (and its fsync) instead of paying for one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import structlog

from eventstore.types import Connection
from schemas.errors import NotFound, RoomlogError, Unavailable, ValidationError, WrongExpectedSeq
from schemas.events import (
    Event,
    EventMetadata,
    RecordedEvent,
    decode_event,
    decode_metadata,
    encode_event,
    encode_metadata,
    type_of,
)

log = structlog.get_logger("roomlog.eventstore")

NOTIFY_CHANNEL = "roomlog_events"


class StreamNotFound(NotFound):
    """The stream does not exist (or belongs to another tenant)."""

    code = "STREAM_NOT_FOUND"


@dataclass(slots=True)
class AppendRequest:
    """One atomic append to one stream, with the conditions it is subject to."""

    stream_id: str
    tenant_id: str
    events: Sequence[Event]
    metadata: EventMetadata
    expected_seq: int | None = None
    idempotency_key: str | None = None
    create_stream: bool = False
    # Checked by the inline hook under the stream lock, so the rule and the write are atomic.
    guard: object | None = None


@dataclass(slots=True)
class AppendResult:
    """What an append wrote, or — for a repeated idempotency key — what the first append wrote."""

    stream_id: str
    events: list[RecordedEvent]
    duplicate: bool = False

    @property
    def first_seq(self) -> int:
        return self.events[0].seq

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq


class InlineHook(Protocol):
    """What the append transaction calls: guards before writing, inline projections after."""

    async def check(self, conn: Connection, requests: Sequence[AppendRequest]) -> list[RoomlogError | None]:
        ...

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        ...


class NoInlineHook:
    """A hook that checks nothing and projects nothing (the bare log)."""

    async def check(self, conn: Connection, requests: Sequence[AppendRequest]) -> list[RoomlogError | None]:
        return [None] * len(requests)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        return None


@dataclass(slots=True)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


# One round trip writes the events, moves the streams' last_seq and queues the wake-up for readers
# (a NOTIFY is delivered at commit, so it never announces an event that is not there).
_INSERT_EVENTS = """
WITH written AS (
    INSERT INTO events (stream_id, seq, tenant_id, type, data, metadata, idempotency_key)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])
    RETURNING position, stream_id, seq, created_at
), moved AS (
    UPDATE streams s SET last_seq = v.last_seq
    FROM unnest($8::text[], $9::bigint[]) AS v(stream_id, last_seq) WHERE s.stream_id = v.stream_id
)
SELECT w.position, w.stream_id, w.seq, w.created_at, (SELECT count(*) FROM (SELECT pg_notify($10, '')) n) AS woke
FROM written w
"""
_CREATE_STREAMS = """
INSERT INTO streams (stream_id, tenant_id) SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT DO NOTHING RETURNING stream_id
"""
# ORDER BY makes every transaction take its row locks in the same order, so batches never deadlock.
_LOCK_STREAMS = """
SELECT stream_id, tenant_id, last_seq FROM streams WHERE stream_id = ANY($1::text[])
ORDER BY stream_id FOR UPDATE
"""
_FIND_KEYS = """
SELECT e.position, e.stream_id, e.seq, e.tenant_id, e.created_at, e.data, e.metadata, e.idempotency_key
FROM events e JOIN unnest($1::text[], $2::text[]) AS k(stream_id, idempotency_key)
  ON e.stream_id = k.stream_id AND e.idempotency_key = k.idempotency_key
"""


class Appender:
    """Group-committing writer: `append` queues a request and resolves once its transaction committed."""

    def __init__(
        self, pool: asyncpg.Pool, hook: InlineHook, *, writers: int = 4, max_batch: int = 500
    ) -> None:
        self._pool = pool
        self._hook = hook
        self._writers = writers
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the writer tasks on the running loop."""
        self._tasks = [asyncio.create_task(self._run(), name=f"appender-{i}") for i in range(self._writers)]

    async def stop(self) -> None:
        """Finish what is queued, then stop the writers."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event],
        *,
        tenant_id: str,
        metadata: EventMetadata,
        expected_seq: int | None = None,
        idempotency_key: str | None = None,
        create_stream: bool = False,
        guard: object | None = None,
    ) -> AppendResult:
        """Append events to one stream atomically; raises a RoomlogError when a condition fails."""
        request = AppendRequest(
            stream_id=stream_id,
            tenant_id=tenant_id,
            events=events,
            metadata=metadata,
            expected_seq=expected_seq,
            idempotency_key=idempotency_key,
            create_stream=create_stream,
            guard=guard,
        )
        return await self.submit(request)

    async def submit(self, request: AppendRequest) -> AppendResult:
        """Queue a prepared request and wait for its outcome."""
        if not request.events:
            raise ValueError("an append needs at least one event")
        if not self._tasks:
            raise RuntimeError("Appender.start() was not called")
        pending = _Pending(request)
        self._queue.put_nowait(pending)
        # shield: a client that goes away must not cancel the shared batch's future mid-commit.
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:  # a writer must survive anything, or appends would hang forever
                log.exception("append batch crashed", size=len(batch))
                _fail_all(batch, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending], attempt: int = 1) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                outcomes = await _write_batch(conn, self._hook, [p.request for p in batch])
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            if len(batch) > 1 and _worth_retrying_alone(exc):
                # One request broke the shared transaction (a unique key, a deadlock): give each its own.
                await asyncio.gather(*(self._commit([p]) for p in batch))
            elif attempt < _RACE_ATTEMPTS and isinstance(exc, _RACES):
                # A concurrent writer won a unique key; it has committed now, so the guard will see it.
                await self._commit(batch, attempt + 1)
            else:
                _fail_all(batch, translate_database_error(exc))
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)


async def _write_batch(
    conn: Connection, hook: InlineHook, requests: list[AppendRequest]
) -> list[AppendResult | RoomlogError]:
    """Write a batch inside the caller's transaction; return each request's outcome in order."""
    creates = sorted({(r.stream_id, r.tenant_id) for r in requests if r.create_stream})
    created: set[str] = set()
    if creates:
        rows = await conn.fetch(_CREATE_STREAMS, [s for s, _ in creates], [t for _, t in creates])
        created = {row["stream_id"] for row in rows}
    stream_ids = sorted({r.stream_id for r in requests})
    streams = {row["stream_id"]: row for row in await conn.fetch(_LOCK_STREAMS, stream_ids)}
    earlier = await _find_idempotent(conn, requests)

    outcomes: list[AppendResult | RoomlogError | None] = [None] * len(requests)
    for i, r in enumerate(requests):
        row = streams.get(r.stream_id)
        if row is None or row["tenant_id"] != r.tenant_id:
            outcomes[i] = StreamNotFound(f"stream {r.stream_id} does not exist")
        elif r.idempotency_key is not None and (r.stream_id, r.idempotency_key) in earlier:
            outcomes[i] = AppendResult(r.stream_id, [earlier[(r.stream_id, r.idempotency_key)]], duplicate=True)
    guarded = [i for i, r in enumerate(requests) if outcomes[i] is None and r.guard is not None]
    if guarded:
        for i, error in zip(guarded, await hook.check(conn, [requests[i] for i in guarded]), strict=True):
            outcomes[i] = error

    last_seq = {sid: row["last_seq"] for sid, row in streams.items()}
    planned: list[tuple[int, list[int]]] = []  # (request index, seqs)
    first_of_key: dict[tuple[str, str], int] = {}
    for i, r in enumerate(requests):
        if outcomes[i] is not None:
            continue
        key = (r.stream_id, r.idempotency_key) if r.idempotency_key is not None else None
        if key is not None and key in first_of_key:
            continue  # the same key twice in one batch: resolved from the first below
        if r.expected_seq is not None and r.expected_seq != last_seq[r.stream_id]:
            outcomes[i] = WrongExpectedSeq(
                f"expected seq {r.expected_seq}, stream is at {last_seq[r.stream_id]}"
            )
            continue
        start = last_seq[r.stream_id]
        seqs = list(range(start + 1, start + 1 + len(r.events)))
        last_seq[r.stream_id] = seqs[-1]
        planned.append((i, seqs))
        if key is not None:
            first_of_key[key] = i

    recorded = await _insert(conn, requests, planned, last_seq)
    if unused := created - {e.stream_id for e in recorded}:
        # A create whose guard failed (a second DM of a pair) leaves no empty stream behind.
        await conn.execute("DELETE FROM streams WHERE stream_id = ANY($1::text[])", sorted(unused))
    if recorded:
        await hook.apply(conn, recorded)

    by_index = {}
    cursor = 0
    for i, seqs in planned:
        by_index[i] = AppendResult(requests[i].stream_id, recorded[cursor : cursor + len(seqs)])
        cursor += len(seqs)
    final: list[AppendResult | RoomlogError] = []
    for i, r in enumerate(requests):
        outcome = outcomes[i] if outcomes[i] is not None else by_index.get(i)
        if outcome is None:  # a repeat of a key first seen earlier in this batch
            assert r.idempotency_key is not None
            first = by_index[first_of_key[(r.stream_id, r.idempotency_key)]]
            outcome = AppendResult(first.stream_id, first.events[:1], duplicate=True)
        final.append(outcome)
    return final


async def _find_idempotent(
    conn: Connection, requests: list[AppendRequest]
) -> dict[tuple[str, str], RecordedEvent]:
    keyed = [(r.stream_id, r.idempotency_key) for r in requests if r.idempotency_key is not None]
    if not keyed:
        return {}
    rows = await conn.fetch(_FIND_KEYS, [s for s, _ in keyed], [k for _, k in keyed])
    return {(row["stream_id"], row["idempotency_key"]): record_from_row(row) for row in rows}


async def _insert(
    conn: Connection, requests: list[AppendRequest], planned: list[tuple[int, list[int]]], last_seq: dict[str, int]
) -> list[RecordedEvent]:
    if not planned:
        return []
    changed = sorted({requests[i].stream_id for i, _ in planned})
    cols: tuple[list[object], ...] = ([], [], [], [], [], [], [])
    flat: list[tuple[AppendRequest, Event]] = []
    for i, seqs in planned:
        r = requests[i]
        meta = encode_metadata(r.metadata)
        for n, (seq, event) in enumerate(zip(seqs, r.events, strict=True)):
            for col, value in zip(
                cols,
                (r.stream_id, seq, r.tenant_id, type_of(event), encode_event(event), meta,
                 r.idempotency_key if n == 0 else None),
                strict=True,
            ):
                col.append(value)
            flat.append((r, event))
    rows = await conn.fetch(_INSERT_EVENTS, *cols, changed, [last_seq[sid] for sid in changed], NOTIFY_CHANNEL)
    written = {(row["stream_id"], row["seq"]): row for row in rows}
    recorded = []
    for (r, event), key in zip(flat, zip(cols[0], cols[1], strict=True), strict=True):
        row = written[key]
        recorded.append(
            RecordedEvent(
                position=row["position"],
                stream_id=r.stream_id,
                seq=row["seq"],
                tenant_id=r.tenant_id,
                created_at=row["created_at"],
                event=event,
                metadata=r.metadata,
            )
        )
    return recorded


def record_from_row(row: asyncpg.Record) -> RecordedEvent:
    """Build a RecordedEvent from an `events` row (position, stream_id, seq, tenant_id, created_at, data, metadata)."""
    return RecordedEvent(
        position=row["position"],
        stream_id=row["stream_id"],
        seq=row["seq"],
        tenant_id=row["tenant_id"],
        created_at=row["created_at"],
        event=decode_event(row["data"]),
        metadata=decode_metadata(row["metadata"]),
    )


_RACE_ATTEMPTS = 3
_RACES = (
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


def _worth_retrying_alone(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.exceptions.CannotConnectNowError | asyncpg.exceptions.AdminShutdownError
    )


def translate_database_error(exc: BaseException) -> BaseException:
    """The RoomlogError a database failure means for the client, or the exception itself (a bug: 500)."""
    if isinstance(exc, RoomlogError):
        return exc
    if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
        return Unavailable("the database is not accepting writes")
    if isinstance(exc, asyncpg.exceptions.CharacterNotInRepertoireError
                  | asyncpg.exceptions.UntranslatableCharacterError):
        return ValidationError("text contains a character that cannot be stored (such as NUL, \\u0000)")
    if isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.exceptions.CannotConnectNowError
                  | asyncpg.exceptions.AdminShutdownError | asyncpg.exceptions.ConnectionFailureError):
        return Unavailable("the database is not reachable")
    return exc


def _fail_all(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
