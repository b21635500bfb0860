"""Appending to streams: gapless per-stream seq, idempotency keys, and group commit.

Every append waits in one queue. A writer task takes everything queued and writes it with one
statement (`rl_append`, migration 005, plus the inline projections that are SQL), so under load many
appends share a commit and its fsync, and a batch costs one round trip. Only a batch with events that
a Python projection handles wraps that statement in a transaction with the projection's own writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import asyncpg
import structlog

from eventstore.types import Chained, Connection, ProjectionStatement
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


GuardColumns = tuple[str | None, str | None, str | None, str | None]  # kind, arg1, arg2, arg3
_NO_GUARD: GuardColumns = (None, None, None, None)


class InlineHook(Protocol):
    """What the append calls besides the log itself: guards and inline projections.

    Guards are evaluated by the database under the stream locks (`rl_guard_failures`): the hook says
    how a guard object is passed there and which error a failure means. Projections with SQL run inside
    the append statement itself; `apply` runs the others in the same transaction.
    """

    @property
    def projection_sql(self) -> Sequence[ProjectionStatement]:
        """Data-modifying statements over the relation `new_events` (the rows just written), run in the append."""
        ...

    def needs_transaction(self, types: set[str]) -> bool:
        """Whether events of these types need `apply` in the append's transaction."""
        ...

    def encode_guard(self, guard: object) -> GuardColumns:
        ...

    def guard_error(self, guard: object, code: str, detail: str | None) -> RoomlogError:
        ...

    def batch_key(self, guard: object) -> tuple[Hashable, bool] | None:
        """What a guard is about and whether its append is exclusive: an exclusive append shares no batch
        with another append of the same key, because guards see the tables as they were before the batch."""
        ...

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        ...


class NoInlineHook:
    """A hook that checks nothing and projects nothing (the bare log)."""

    projection_sql: Sequence[ProjectionStatement] = ()

    def needs_transaction(self, types: set[str]) -> bool:
        return False

    def encode_guard(self, guard: object) -> GuardColumns:
        raise TypeError(f"no guards without an inline hook: {guard!r}")

    def guard_error(self, guard: object, code: str, detail: str | None) -> RoomlogError:
        raise TypeError(f"no guards without an inline hook: {guard!r}")

    def batch_key(self, guard: object) -> tuple[Hashable, bool] | None:
        return None

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        return None


@dataclass(slots=True)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def append_statement(projection_sql: Sequence[ProjectionStatement]) -> str:
    """The one statement a batch costs: `rl_append` (migration 005) plus the SQL inline projections."""
    projections = "".join(
        f"{sql.ctes()},\n  projected_{i} AS ({sql.final})" if isinstance(sql, Chained)
        else f",\n  projected_{i} AS ({sql})"
        for i, sql in enumerate(projection_sql)
    )
    return f"""
WITH appended AS MATERIALIZED (
    SELECT * FROM rl_append($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::int[],
                            $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::int[], $12::text[], $13::jsonb[], $14::jsonb[], $15::text)
), new_events AS (SELECT * FROM appended WHERE kind = 'new'){projections}
SELECT req, kind, position, stream_id, seq, tenant_id, created_at, code, detail,
       CASE WHEN kind = 'dup' THEN data::text END AS data, CASE WHEN kind = 'dup' THEN metadata::text END AS metadata
FROM appended
"""


def stream_key(stream_id: str) -> Hashable:
    """The batch key every append to a stream claims (not exclusively); a guard that claims it exclusively gets
    a batch with no other append to that stream."""
    return ("stream", stream_id)


class Appender:
    """Group-committing writer: `append` queues a request and resolves once its transaction committed."""

    def __init__(
        self, pool: asyncpg.Pool, hook: InlineHook, *, writers: int = 4, max_batch: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._hook = hook
        self._writers = writers
        self._max_batch = max_batch
        # Told the size of every committed batch (the service's metrics); None costs nothing.
        self._on_batch = on_batch
        self._statement = append_statement(hook.projection_sql)
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

    async def append_together(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Append to several streams in one transaction, all or nothing; raises the first refused condition.

        Outside the group commit: for the rare write whose streams must move together (a ticket and the
        tenant's ticket counter), where one request's refusal must undo the others.
        """
        return await self._together(requests)

    async def append_together_at(self, build: Callable[[datetime], Sequence[AppendRequest]]) -> list[AppendResult]:
        """Like `append_together`, with the requests built for the transaction's timestamp: the `created_at` each
        of their events will record (for events that are a fold of the ones before them, such as a new ticket's
        SLA clock, which counts from the ticket's creation)."""
        return await self._together(build)

    async def _together(
        self, requests: Sequence[AppendRequest] | Callable[[datetime], Sequence[AppendRequest]]
    ) -> list[AppendResult]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if callable(requests):
                    requests = requests(await conn.fetchval("SELECT now()"))
                outcomes = await _write_batch(conn, self._hook, self._statement, list(requests))
                results: list[AppendResult] = []
                for outcome in outcomes:
                    if isinstance(outcome, RoomlogError):
                        raise outcome  # rolls the transaction back
                    results.append(outcome)
                if recorded := [e for r in results if not r.duplicate for e in r.events]:
                    await self._hook.apply(conn, recorded)
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            raise translate_database_error(exc) from exc
        if self._on_batch is not None:
            self._on_batch(len(results))
        return results

    async def append_each(
        self, conn: Connection, requests: Sequence[AppendRequest]
    ) -> list[AppendResult | RoomlogError]:
        """Append independent requests with one statement on the caller's connection, inside its transaction: each
        is written or refused on its own (its outcome, in order), and the inline projections apply what was written.

        Outside the group commit: for a caller that reads and locks what it appends to in the same transaction
        (the breach timer's streams, taken with SKIP LOCKED so that instances share the work instead of racing).
        """
        if not requests:
            return []
        try:
            outcomes = await _write_batch(conn, self._hook, self._statement, list(requests))
            if recorded := [e for o in outcomes if isinstance(o, AppendResult) and not o.duplicate for e in o.events]:
                await self._hook.apply(conn, recorded)
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            raise translate_database_error(exc) from exc
        if self._on_batch is not None:
            self._on_batch(len(requests))
        return outcomes

    async def submit(self, request: AppendRequest) -> AppendResult:
        """Queue a prepared request and wait for its outcome."""
        if not request.events:
            raise ValueError("an append needs at least one event")
        if not self._tasks:
            raise RuntimeError("Appender.start() was not called")
        pending = _Pending(request)
        self._queue.put_nowait(pending)
        # A caller that goes away cancels only its own future: the batch still commits, and the writer
        # skips futures that are done.
        return await pending.future

    async def _run(self) -> None:
        held: list[_Pending] = []
        while True:
            if not held:
                held.append(await self._queue.get())
            batch, held = self._next_batch(held)
            try:
                await self._commit(batch)
            except Exception as exc:  # a writer must survive anything, or appends would hang forever
                log.exception("append batch crashed", size=len(batch))
                _fail_all(batch, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _next_batch(self, held: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        """The next batch: what was held back first, then the queue; and what is held back for the batch after.

        Guards are checked against the tables as they were before the batch, so two requests decided on
        the same message would both pass: two deletions of it, or an edit after its deletion. A request
        exclusive on a key (a deletion) therefore never shares a batch with another of the same key; the
        later one, and every one after it with that key, waits for the next batch, where the guard sees
        the first one's effect. Requests of one key keep their order. Every request also claims its
        stream's key (`stream_key`), not exclusively, so a guard exclusive on a stream (a room's deletion)
        shares its batch with no other append to the stream; plain sends are held back only behind such a
        request. Non-exclusive ones (edits, reactions, sends) share a batch freely.
        """
        batch: list[_Pending] = []
        later: list[_Pending] = []
        keys: dict[Hashable, bool] = {}  # key -> whether the batch holds an exclusive request for it
        pending = iter(held)
        while len(batch) < self._max_batch:
            p = next(pending, None)
            if p is None:
                if self._queue.empty():
                    break
                p = self._queue.get_nowait()
            guard = p.request.guard
            claim = self._hook.batch_key(guard) if guard is not None else None
            claims = [(stream_key(p.request.stream_id), False)] + ([claim] if claim is not None else [])
            if any(key in keys and (exclusive or keys[key]) for key, exclusive in claims):
                for key, _ in claims:
                    keys[key] = True  # and so is everything after it with these keys: their order holds
                later.append(p)
                continue
            for key, exclusive in claims:
                keys[key] = keys.get(key, False) or exclusive
            batch.append(p)
        later.extend(pending)  # what did not fit into a full batch
        return batch, later

    async def _commit(self, batch: list[_Pending], attempt: int = 1) -> None:
        requests = [p.request for p in batch]
        types = {type_of(e) for r in requests for e in r.events}
        try:
            async with self._pool.acquire() as conn:
                if self._hook.needs_transaction(types):
                    async with conn.transaction():
                        outcomes = await _write_batch(conn, self._hook, self._statement, requests)
                        if recorded := [e for o in outcomes if isinstance(o, AppendResult) and not o.duplicate
                                        for e in o.events]:
                            await self._hook.apply(conn, recorded)
                else:  # one statement is its own transaction: the batch costs one round trip
                    outcomes = await _write_batch(conn, self._hook, self._statement, requests)
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            if len(batch) > 1 and _worth_retrying_alone(exc):
                # One request broke the shared transaction (a unique key, a deadlock): give each its own.
                await asyncio.gather(*(self._commit([p]) for p in batch))
            elif attempt < _RACE_ATTEMPTS and isinstance(exc, _RACES):
                # A concurrent writer won a unique key; it has committed now, so the guard will see it.
                await self._commit(batch, attempt + 1)
            else:
                _fail_all(batch, translate_database_error(exc))
            return
        if self._on_batch is not None:
            self._on_batch(len(batch))
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)


async def _write_batch(
    conn: Connection, hook: InlineHook, statement: str, requests: list[AppendRequest]
) -> list[AppendResult | RoomlogError]:
    """Run the append statement for a batch; return each request's outcome in order."""
    # A key repeated inside the batch (a client retry racing its original) is answered from the first.
    first_of_key: dict[tuple[str, str], int] = {}
    repeat_of: dict[int, int] = {}
    sent: list[int] = []
    for i, r in enumerate(requests):
        if r.idempotency_key is not None:
            key = (r.stream_id, r.idempotency_key)
            if key in first_of_key:
                repeat_of[i] = first_of_key[key]
                continue
            first_of_key[key] = i
        sent.append(i)
    rows = await conn.fetch(statement, *_arguments(hook, [requests[i] for i in sent]))

    by_request: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        by_request.setdefault(sent[row["req"] - 1], []).append(row)
    outcomes: list[AppendResult | RoomlogError] = []
    for i, r in enumerate(requests):
        if i in repeat_of:
            first = outcomes[repeat_of[i]]
            outcomes.append(AppendResult(first.stream_id, first.events[:1], duplicate=True)
                            if isinstance(first, AppendResult) else first)
        else:
            outcomes.append(_outcome(hook, r, by_request[i]))
    return outcomes


def _arguments(hook: InlineHook, requests: list[AppendRequest]) -> tuple[object, ...]:
    """The parameters of the append statement, column by column."""
    guards = [hook.encode_guard(r.guard) if r.guard is not None else _NO_GUARD for r in requests]
    has_guards = any(g is not _NO_GUARD for g in guards)
    e_req: list[int] = []
    e_type: list[str] = []
    e_data: list[str] = []
    e_meta: list[str] = []
    for n, r in enumerate(requests, start=1):
        meta = encode_metadata(r.metadata)
        for event in r.events:
            e_req.append(n)
            e_type.append(type_of(event))
            e_data.append(encode_event(event))
            e_meta.append(meta)
    return (
        [r.stream_id for r in requests], [r.tenant_id for r in requests], [r.expected_seq for r in requests],
        [r.idempotency_key for r in requests], [r.create_stream for r in requests], [len(r.events) for r in requests],
        *([list(column) for column in zip(*guards, strict=True)] if has_guards else [None] * 4),
        e_req, e_type, e_data, e_meta, NOTIFY_CHANNEL,
    )


def _outcome(hook: InlineHook, request: AppendRequest, rows: list[asyncpg.Record]) -> AppendResult | RoomlogError:
    """What the database's rows for one request mean: the events written, the earlier append, or an error."""
    first = rows[0]
    if first["kind"] == "new":
        rows.sort(key=lambda row: row["seq"])
        return AppendResult(request.stream_id, [
            RecordedEvent(position=row["position"], stream_id=request.stream_id, seq=row["seq"],
                          tenant_id=request.tenant_id, created_at=row["created_at"], event=event,
                          metadata=request.metadata)
            for row, event in zip(rows, request.events, strict=True)
        ])
    if first["kind"] == "dup":
        return AppendResult(request.stream_id, [record_from_row(first)], duplicate=True)
    code, detail = first["code"], first["detail"]
    if code == "STREAM_NOT_FOUND":
        return StreamNotFound(f"stream {request.stream_id} does not exist")
    if code == WrongExpectedSeq.code:
        return WrongExpectedSeq(f"expected seq {request.expected_seq}, stream is at {detail}")
    return hook.guard_error(request.guard, code, detail)


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


# What a lost or refused database connection raises: the server stopped, restarts or crashed, or a
# connection broke mid-operation (asyncpg then reports a protocol state error on its next use).
CONNECTION_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def _worth_retrying_alone(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, CONNECTION_LOST)


def translate_database_error(exc: BaseException) -> BaseException:
    """The RoomlogError a database failure means for the client, or the exception itself (a bug: 500)."""
    if isinstance(exc, RoomlogError):
        return exc
    if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
        return Unavailable("the database is not accepting writes")
    if isinstance(exc, asyncpg.exceptions.CharacterNotInRepertoireError
                  | asyncpg.exceptions.UntranslatableCharacterError):
        return ValidationError("text contains a character that cannot be stored (such as NUL, \\u0000)")
    if isinstance(exc, CONNECTION_LOST):
        return Unavailable("the database is not reachable")
    return exc


def _fail_all(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
