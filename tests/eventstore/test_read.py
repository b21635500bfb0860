"""eventstore/read.py: one stream after a seq, and the global log without skipping late commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Sequence

import asyncpg
import pytest

from eventstore.append import Appender, GuardColumns, record_from_row
from eventstore.read import GlobalReader, read_stream
from eventstore.types import Connection, ProjectionStatement
from projections.inline import InlineProjections
from schemas.errors import RoomlogError
from schemas.events import Event, EventMetadata, MemberJoined, MessageSent, RecordedEvent, RoomCreated
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant


def _meta(tenant_id: str) -> EventMetadata:
    return EventMetadata(tenant_id=tenant_id, actor="alice")


def _room_events(room_id: str) -> list[Event]:
    return [
        RoomCreated(room_id=room_id, room_type="group", created_by="alice"),
        MemberJoined(user_id="alice", role="admin", added_by="alice"),
    ]


def _message(content: str = "hi") -> MessageSent:
    return MessageSent(message_id=new_id("msg"), sender_id="alice", content=content)


async def _new_room(appender: Appender, tenant_id: str) -> str:
    room_id = new_id("room")
    await appender.append(room_id, _room_events(room_id), tenant_id=tenant_id, metadata=_meta(tenant_id),
                          create_stream=True)
    return room_id


async def _max_position(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))


class _Aborted(Exception):
    """Raised inside the gated transaction to roll it back."""


class _GatedHook:
    """The real inline hook, except that the transaction stays open after writing until released."""

    def __init__(self) -> None:
        self._inner = InlineProjections()
        self.written: asyncio.Event = asyncio.Event()
        self.release: asyncio.Event = asyncio.Event()
        self.roll_back = False
        self.events: list[RecordedEvent] = []

    @property
    def projection_sql(self) -> Sequence[ProjectionStatement]:
        return self._inner.projection_sql

    def needs_transaction(self, types: set[str]) -> bool:
        return True  # always a transaction, so `apply` can hold it open

    def encode_guard(self, guard: object) -> GuardColumns:
        return self._inner.encode_guard(guard)

    def guard_error(self, guard: object, code: str, detail: str | None) -> RoomlogError:
        return self._inner.guard_error(guard, code, detail)

    def batch_key(self, guard: object) -> tuple[Hashable, bool] | None:
        return self._inner.batch_key(guard)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await self._inner.apply(conn, events)
        self.events = list(events)
        self.written.set()
        await self.release.wait()
        if self.roll_back:
            raise _Aborted("rolled back on purpose")


@pytest.fixture
async def gate(pool: asyncpg.Pool) -> AsyncIterator[tuple[Appender, _GatedHook]]:
    """An appender of its own whose transactions wait at the gate after inserting their events."""
    hook = _GatedHook()
    appender = Appender(pool, hook, writers=1)
    appender.start()
    yield appender, hook
    hook.release.set()
    await appender.stop()


async def _open_append(gate: tuple[Appender, _GatedHook], tenant_id: str) -> tuple[asyncio.Task[object], int]:
    """Start an append that holds its transaction open; return its task and its (uncommitted) position."""
    appender, hook = gate
    room = new_id("room")
    task: asyncio.Task[object] = asyncio.create_task(
        appender.append(room, _room_events(room), tenant_id=tenant_id, metadata=_meta(tenant_id), create_stream=True)
    )
    await asyncio.wait_for(hook.written.wait(), 10)
    return task, hook.events[0].position


async def _read_until(pool: asyncpg.Pool, reader: GlobalReader, position: int, *, reads: int) -> list[RecordedEvent]:
    """Read up to `reads` times, stopping once `position` was returned."""
    seen: list[RecordedEvent] = []
    async with pool.acquire() as conn:
        for _ in range(reads):
            seen += await reader.read(conn)
            if any(e.position == position for e in seen):
                break
            await asyncio.sleep(0.02)
    return seen


# --- read_stream ---------------------------------------------------------------------------------


async def test_read_stream_returns_the_events_after_a_seq_in_order(runtime: Runtime, tenant: Tenant) -> None:
    room = await _new_room(runtime.appender, tenant.tenant_id)
    await runtime.appender.append(room, [_message("a"), _message("b"), _message("c")],
                                  tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id))
    events = await read_stream(runtime.pool, room, after_seq=2)
    assert [e.seq for e in events] == [3, 4, 5]
    assert [e.event.content for e in events if isinstance(e.event, MessageSent)] == ["a", "b", "c"]
    assert {e.stream_id for e in events} == {room}


async def test_read_stream_returns_at_most_limit_events(runtime: Runtime, tenant: Tenant) -> None:
    room = await _new_room(runtime.appender, tenant.tenant_id)
    await runtime.appender.append(room, [_message(str(i)) for i in range(5)],
                                  tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id))
    assert [e.seq for e in await read_stream(runtime.pool, room, after_seq=1, limit=3)] == [2, 3, 4]


async def test_read_stream_decodes_what_was_appended(runtime: Runtime, tenant: Tenant) -> None:
    room = await _new_room(runtime.appender, tenant.tenant_id)
    message = _message("round trip")
    written = await runtime.appender.append(room, [message], tenant_id=tenant.tenant_id,
                                            metadata=_meta(tenant.tenant_id))
    [read] = await read_stream(runtime.pool, room, after_seq=2)
    assert read == written.events[0]


async def test_read_stream_of_a_missing_stream_is_empty(runtime: Runtime) -> None:
    assert await read_stream(runtime.pool, new_id("room")) == []


# --- GlobalReader --------------------------------------------------------------------------------


async def test_global_reader_returns_events_in_position_order_and_advances(runtime: Runtime, tenant: Tenant) -> None:
    start = await _max_position(runtime.pool)
    room_a = await _new_room(runtime.appender, tenant.tenant_id)
    room_b = await _new_room(runtime.appender, tenant.tenant_id)
    last = await runtime.appender.append(room_a, [_message()], tenant_id=tenant.tenant_id,
                                         metadata=_meta(tenant.tenant_id))
    reader = GlobalReader(start)
    events = await _read_until(runtime.pool, reader, last.events[0].position, reads=10)
    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    ours = [(e.stream_id, e.seq) for e in events if e.stream_id in (room_a, room_b)]
    assert ours == [(room_a, 1), (room_a, 2), (room_b, 1), (room_b, 2), (room_a, 3)]
    assert reader.position == positions[-1] == last.events[0].position


async def test_global_reader_honours_limit(runtime: Runtime, tenant: Tenant) -> None:
    start = await _max_position(runtime.pool)
    room = await _new_room(runtime.appender, tenant.tenant_id)
    await runtime.appender.append(room, [_message(str(i)) for i in range(4)], tenant_id=tenant.tenant_id,
                                  metadata=_meta(tenant.tenant_id))
    reader = GlobalReader(start)
    async with runtime.pool.acquire() as conn:
        first = await reader.read(conn, limit=2)
        rest = await reader.read(conn, limit=100)
    assert len(first) <= 2
    assert [e.seq for e in first + rest if e.stream_id == room] == [1, 2, 3, 4, 5, 6]


async def test_global_reader_waits_at_an_in_flight_append(
    runtime: Runtime, gate: tuple[Appender, _GatedHook], tenant: Tenant
) -> None:
    start = await _max_position(runtime.pool)
    _, hole = await _open_append(gate, tenant.tenant_id)
    later = await _new_room(runtime.appender, tenant.tenant_id)
    reader = GlobalReader(start)
    seen: list[RecordedEvent] = []
    async with runtime.pool.acquire() as conn:
        for _ in range(3):  # however often it looks, the open transaction's hole is never final
            seen += await reader.read(conn)
            await runtime.appender.append(later, [_message()], tenant_id=tenant.tenant_id,
                                          metadata=_meta(tenant.tenant_id))
            await asyncio.sleep(0.05)
    assert all(e.position < hole for e in seen)
    assert reader.position < hole


async def test_global_reader_returns_a_late_commit_before_the_events_after_it(
    runtime: Runtime, gate: tuple[Appender, _GatedHook], tenant: Tenant
) -> None:
    start = await _max_position(runtime.pool)
    task, hole = await _open_append(gate, tenant.tenant_id)
    later_room = await _new_room(runtime.appender, tenant.tenant_id)
    later = (await read_stream(runtime.pool, later_room))[0].position
    assert later > hole
    reader = GlobalReader(start)
    async with runtime.pool.acquire() as conn:
        before_commit = await reader.read(conn)
    gate[1].release.set()
    await asyncio.wait_for(task, 10)
    after_commit = await _read_until(runtime.pool, reader, later, reads=10)
    assert all(e.position < hole for e in before_commit)
    positions = [e.position for e in after_commit]
    assert hole in positions and later in positions
    assert positions.index(hole) < positions.index(later)
    assert positions == sorted(positions)


async def test_global_reader_skips_a_rolled_back_hole_once_it_is_final(
    runtime: Runtime, gate: tuple[Appender, _GatedHook], tenant: Tenant
) -> None:
    start = await _max_position(runtime.pool)
    task, hole = await _open_append(gate, tenant.tenant_id)
    later_room = await _new_room(runtime.appender, tenant.tenant_id)
    later = (await read_stream(runtime.pool, later_room))[0].position
    reader = GlobalReader(start)
    async with runtime.pool.acquire() as conn:
        while_open = await reader.read(conn)
    gate[1].roll_back = True
    gate[1].release.set()
    with pytest.raises(_Aborted):
        await asyncio.wait_for(task, 10)
    after = await _read_until(runtime.pool, reader, later, reads=3)
    assert all(e.position < hole for e in while_open)
    assert later in [e.position for e in after]
    assert hole not in [e.position for e in while_open + after]


async def test_global_reader_reads_only_the_payloads_asked_for_and_every_position(
    runtime: Runtime, tenant: Tenant
) -> None:
    start = await _max_position(runtime.pool)
    room = await _new_room(runtime.appender, tenant.tenant_id)
    sent = await runtime.appender.append(room, [_message("a"), _message("b")], tenant_id=tenant.tenant_id,
                                         metadata=_meta(tenant.tenant_id))
    reader = GlobalReader(start)
    async with runtime.pool.acquire() as conn:
        rows = await reader.read_rows(conn, payload_types=["message.sent"])
    ours = [r for r in rows if r["stream_id"] == room]
    assert [r["seq"] for r in ours] == [1, 2, 3, 4]
    assert [r["data"] is None for r in ours] == [True, True, False, False]
    assert [record_from_row(r).event for r in ours[2:]] == [s.event for s in sent.events]
    assert [r["position"] for r in rows] == list(range(start + 1, reader.position + 1))
