"""eventstore/append.py: gapless seqs, expected_seq, idempotency keys, tenants, and group commit."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable

import asyncpg
import httpx
import pytest

from eventstore.append import Appender, AppendRequest, AppendResult, StreamNotFound, translate_database_error
from projections import InlineProjections
from projections.guards import LiveMessage, MemberOf, UniqueRoomKey
from schemas.errors import MessageWasDeleted, NotAMember, RoomExists, Unavailable, WrongExpectedSeq
from schemas.events import Event, EventMetadata, MemberJoined, MessageEdited, MessageSent, RoomCreated
from schemas.events import MessageDeleted as MessageDeletedEvent
from service.domain.rooms import dm_key
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant, create_database


def _meta(tenant_id: str, actor: str = "alice") -> EventMetadata:
    return EventMetadata(tenant_id=tenant_id, actor=actor)


def _room_events(room_id: str, *, unique_key: str | None = None) -> list[Event]:
    return [
        RoomCreated(room_id=room_id, room_type="dm" if unique_key else "group", created_by="alice",
                    unique_key=unique_key),
        MemberJoined(user_id="alice", role="admin", added_by="alice"),
    ]


def _message(content: str = "hi", sender: str = "alice") -> MessageSent:
    return MessageSent(message_id=new_id("msg"), sender_id=sender, content=content)


async def _new_room(appender: Appender, tenant_id: str) -> str:
    """A fresh room stream (seq 1 and 2 taken by its creation)."""
    room_id = new_id("room")
    await appender.append(room_id, _room_events(room_id), tenant_id=tenant_id, metadata=_meta(tenant_id),
                          create_stream=True)
    return room_id


async def _seqs(pool: asyncpg.Pool, stream_id: str) -> list[int]:
    return [r["seq"] for r in await pool.fetch("SELECT seq FROM events WHERE stream_id = $1 ORDER BY seq", stream_id)]


@pytest.fixture
def appender(runtime: Runtime) -> Appender:
    """The session's group-committing appender (inline projections included)."""
    return runtime.appender


async def test_seqs_start_at_one_and_have_no_gaps(appender: Appender, pool: asyncpg.Pool, tenant: Tenant) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    for _ in range(3):
        await appender.append(room, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id))
    assert await _seqs(pool, room) == [1, 2, 3, 4, 5]
    assert await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", room) == 5


async def test_a_multi_event_append_takes_consecutive_seqs(appender: Appender, tenant: Tenant) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    result = await appender.append(room, [_message("a"), _message("b"), _message("c")],
                                   tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id))
    assert [e.seq for e in result.events] == [3, 4, 5]
    assert (result.first_seq, result.last_seq, result.duplicate) == (3, 5, False)
    assert [e.position for e in result.events] == sorted({e.position for e in result.events})


async def test_a_matching_expected_seq_appends(appender: Appender, tenant: Tenant) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    result = await appender.append(room, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                                   expected_seq=2)
    assert result.first_seq == 3


async def test_a_stale_expected_seq_raises_seq_conflict_and_appends_nothing(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    with pytest.raises(WrongExpectedSeq) as info:
        await appender.append(room, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                              expected_seq=1)
    assert (info.value.code, info.value.status) == ("SEQ_CONFLICT", 409)
    assert await _seqs(pool, room) == [1, 2]


async def test_expected_seq_zero_creates_a_new_stream(appender: Appender, pool: asyncpg.Pool, tenant: Tenant) -> None:
    room = new_id("room")
    result = await appender.append(room, _room_events(room), tenant_id=tenant.tenant_id,
                                   metadata=_meta(tenant.tenant_id), expected_seq=0, create_stream=True)
    assert (result.first_seq, result.last_seq) == (1, 2)
    assert await _seqs(pool, room) == [1, 2]


async def test_expected_seq_zero_on_a_stream_with_events_conflicts(appender: Appender, tenant: Tenant) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    with pytest.raises(WrongExpectedSeq):
        await appender.append(room, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                              expected_seq=0, create_stream=True)


async def test_concurrent_appends_at_the_same_expected_seq_let_exactly_one_win(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    outcomes = await asyncio.gather(
        *(appender.append(room, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                          expected_seq=2) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 1
    assert sum(isinstance(o, WrongExpectedSeq) for o in outcomes) == 4
    assert await _seqs(pool, room) == [1, 2, 3]


async def test_a_repeated_idempotency_key_returns_the_first_append(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    first = await appender.append(room, [_message("one")], tenant_id=tenant.tenant_id,
                                  metadata=_meta(tenant.tenant_id), idempotency_key="k1")
    again = await appender.append(room, [_message("two")], tenant_id=tenant.tenant_id,
                                  metadata=_meta(tenant.tenant_id), idempotency_key="k1")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.events[0].position == first.events[0].position
    assert again.events[0].seq == first.events[0].seq == 3
    assert again.events[0].event == first.events[0].event
    assert await _seqs(pool, room) == [1, 2, 3]


async def test_identical_keys_in_one_batch_append_once(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    results = await asyncio.gather(
        *(appender.append(room, [_message(f"try {i}")], tenant_id=tenant.tenant_id,
                          metadata=_meta(tenant.tenant_id), idempotency_key="same") for i in range(4))
    )
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert {r.events[0].position for r in results} == {results[0].events[0].position}
    assert await _seqs(pool, room) == [1, 2, 3]


async def test_an_idempotency_key_is_scoped_to_its_stream(appender: Appender, tenant: Tenant) -> None:
    room_a = await _new_room(appender, tenant.tenant_id)
    room_b = await _new_room(appender, tenant.tenant_id)
    a = await appender.append(room_a, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                              idempotency_key="k")
    b = await appender.append(room_b, [_message()], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id),
                              idempotency_key="k")
    assert (a.duplicate, b.duplicate) == (False, False)
    assert a.events[0].position != b.events[0].position


async def test_appending_to_a_missing_stream_raises_stream_not_found(appender: Appender, tenant: Tenant) -> None:
    with pytest.raises(StreamNotFound) as info:
        await appender.append(new_id("room"), [_message()], tenant_id=tenant.tenant_id,
                              metadata=_meta(tenant.tenant_id))
    assert (info.value.code, info.value.status) == ("STREAM_NOT_FOUND", 404)


async def test_appending_to_another_tenants_stream_raises_stream_not_found(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant, other_tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    with pytest.raises(StreamNotFound):
        await appender.append(room, [_message()], tenant_id=other_tenant.tenant_id,
                              metadata=_meta(other_tenant.tenant_id))
    assert await _seqs(pool, room) == [1, 2]


async def test_creating_another_tenants_stream_raises_stream_not_found(
    appender: Appender, tenant: Tenant, other_tenant: Tenant
) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    with pytest.raises(StreamNotFound):
        await appender.append(room, [_message()], tenant_id=other_tenant.tenant_id,
                              metadata=_meta(other_tenant.tenant_id), create_stream=True)


async def test_an_empty_event_list_raises_value_error(appender: Appender, tenant: Tenant) -> None:
    room = await _new_room(appender, tenant.tenant_id)
    with pytest.raises(ValueError):
        await appender.append(room, [], tenant_id=tenant.tenant_id, metadata=_meta(tenant.tenant_id))


async def _fire_200_over_20_streams(appender: Appender, tenant_id: str) -> list[str]:
    rooms = [await _new_room(appender, tenant_id) for _ in range(20)]
    await asyncio.gather(
        *(appender.append(rooms[i % 20], [_message(str(i))], tenant_id=tenant_id, metadata=_meta(tenant_id))
          for i in range(200))
    )
    return rooms


async def test_concurrent_appends_share_transactions(appender: Appender, pool: asyncpg.Pool, tenant: Tenant) -> None:
    rooms = await _fire_200_over_20_streams(appender, tenant.tenant_id)
    transactions = await pool.fetchval(
        "SELECT count(DISTINCT tx_id::text) FROM events WHERE stream_id = ANY($1::text[]) AND seq > 2", rooms
    )
    assert 1 <= transactions < 200


async def test_concurrent_appends_keep_every_stream_gapless(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    rooms = await _fire_200_over_20_streams(appender, tenant.tenant_id)
    for room in rooms:
        assert await _seqs(pool, room) == list(range(1, 13))


async def test_a_unique_violation_in_a_batch_does_not_fail_the_others(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    """Two creates of the same DM in one batch break its transaction; each request is then retried alone."""
    t = tenant.tenant_id
    room = await _new_room(appender, t)
    key = dm_key("alice", "bob")
    dm_a, dm_b = new_id("room"), new_id("room")
    outcomes = await asyncio.gather(
        appender.append(dm_a, _room_events(dm_a, unique_key=key), tenant_id=t, metadata=_meta(t),
                        create_stream=True, guard=UniqueRoomKey(t, key)),
        appender.append(dm_b, _room_events(dm_b, unique_key=key), tenant_id=t, metadata=_meta(t),
                        create_stream=True, guard=UniqueRoomKey(t, key)),
        *(appender.append(room, [_message(str(i))], tenant_id=t, metadata=_meta(t)) for i in range(10)),
        return_exceptions=True,
    )
    dms, sends = outcomes[:2], outcomes[2:]
    assert sorted(type(o).__name__ for o in dms) == ["AppendResult", "RoomExists"]
    assert all(isinstance(o, AppendResult) for o in sends), sends
    assert await _seqs(pool, room) == list(range(1, 13))
    assert await pool.fetchval("SELECT count(*) FROM rooms WHERE tenant_id = $1 AND unique_key = $2", t, key) == 1


async def test_a_dm_create_refused_by_its_guard_leaves_no_stream(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    t, key = tenant.tenant_id, dm_key("alice", "carol")
    first = new_id("room")
    await appender.append(first, _room_events(first, unique_key=key), tenant_id=t, metadata=_meta(t),
                          create_stream=True, guard=UniqueRoomKey(t, key))
    second = new_id("room")
    with pytest.raises(RoomExists) as info:
        await appender.append(second, _room_events(second, unique_key=key), tenant_id=t, metadata=_meta(t),
                              create_stream=True, guard=UniqueRoomKey(t, key))
    assert info.value.extra["room_id"] == first
    assert await pool.fetchval("SELECT count(*) FROM streams WHERE stream_id = $1", second) == 0


async def test_a_guard_failure_in_a_batch_does_not_fail_the_others(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    t = tenant.tenant_id
    room = await _new_room(appender, t)
    outcomes = await asyncio.gather(
        *(appender.append(room, [_message(str(i))], tenant_id=t, metadata=_meta(t), guard=MemberOf(t, room, "alice"))
          for i in range(5)),
        appender.append(room, [_message("intruder", sender="mallory")], tenant_id=t, metadata=_meta(t, "mallory"),
                        guard=MemberOf(t, room, "mallory")),
        *(appender.append(room, [_message(str(i))], tenant_id=t, metadata=_meta(t), guard=MemberOf(t, room, "alice"))
          for i in range(5, 10)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[5], NotAMember)
    assert all(isinstance(o, AppendResult) for i, o in enumerate(outcomes) if i != 5), outcomes
    assert await _seqs(pool, room) == list(range(1, 13))


async def test_a_deletion_shares_no_batch_with_another_change_of_its_message(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    """Queued together, the changes keep their order: those after the first deletion are refused under the lock."""
    t = tenant.tenant_id
    room = await _new_room(appender, t)
    sent = _message("original")
    await appender.append(room, [sent], tenant_id=t, metadata=_meta(t))
    guard = LiveMessage(room, sent.message_id, MemberOf(t, room, "alice"))
    deletion = LiveMessage(room, sent.message_id, MemberOf(t, room, "alice"), deletes=True)

    def edit(content: str) -> Awaitable[AppendResult]:
        event = MessageEdited(message_id=sent.message_id, edited_by="alice", content=content)
        return appender.append(room, [event], tenant_id=t, metadata=_meta(t), guard=guard)

    def delete() -> Awaitable[AppendResult]:
        event = MessageDeletedEvent(message_id=sent.message_id, deleted_by="alice")
        return appender.append(room, [event], tenant_id=t, metadata=_meta(t), guard=deletion)

    def send() -> Awaitable[AppendResult]:
        return appender.append(room, [_message()], tenant_id=t, metadata=_meta(t), guard=MemberOf(t, room, "alice"))

    outcomes = await asyncio.gather(edit("a"), edit("b"), send(), delete(), send(), edit("c"), delete(), send(),
                                    return_exceptions=True)
    assert [type(o) for o in outcomes] == [AppendResult] * 5 + [MessageWasDeleted] * 2 + [AppendResult], outcomes
    types = [r["type"] for r in await pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 AND seq > 3 ORDER BY seq", room)]
    assert Counter(types) == {"message.edited": 2, "message.deleted": 1, "message.sent": 3}
    assert types.index("message.deleted") > max(i for i, kind in enumerate(types) if kind == "message.edited")
    assert await _seqs(pool, room) == list(range(1, 10))


async def test_concurrent_dm_creates_over_http_give_one_room_and_one_conflict(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    alice, bob = tenant.as_user("alice"), tenant.as_user("bob")
    group = (await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=alice)).json()
    responses = await asyncio.gather(
        client.post("/rooms", json={"type": "dm", "members": ["bob"]}, headers=alice),
        client.post("/rooms", json={"type": "dm", "members": ["alice"]}, headers=bob),
        *(client.post(f"/rooms/{group['room_id']}/messages", json={"content": f"m{i}"}, headers=alice)
          for i in range(8)),
    )
    dm_statuses = Counter(r.status_code for r in responses[:2])
    assert dm_statuses == Counter({201: 1, 409: 1}), [r.text for r in responses[:2]]
    created = next(r for r in responses[:2] if r.status_code == 201).json()
    conflict = next(r for r in responses[:2] if r.status_code == 409).json()
    assert conflict["error"]["code"] == "ROOM_EXISTS"
    assert conflict["error"]["room_id"] == created["room_id"]
    sends = responses[2:]
    assert [r.status_code for r in sends] == [201] * 8
    assert sorted(r.json()["seq"] for r in sends) == list(range(group["last_seq"] + 1, group["last_seq"] + 9))



async def test_a_cancelled_append_still_commits_and_later_appends_go_on(
    appender: Appender, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    """A client that goes away mid-append cancels its wait, not the batch: the event is written once."""
    t = tenant.tenant_id
    room = await _new_room(appender, t)
    waiting = asyncio.create_task(appender.append(room, [_message("gone")], tenant_id=t, metadata=_meta(t)))
    await asyncio.sleep(0)  # queued
    waiting.cancel()
    after = await appender.append(room, [_message("next")], tenant_id=t, metadata=_meta(t))
    assert waiting.cancelled()
    assert after.first_seq == 4
    assert await _seqs(pool, room) == [1, 2, 3, 4]


async def test_appends_probe_indexes_even_with_plans_cached_on_empty_tables(pg_server_url: str) -> None:
    """rl_append's statements keep their plans per connection: planned while `events` was empty, a
    join on idempotency keys became a hash join over the whole table (measured: 2.8 ms per batch at
    40,000 events). Every lookup of a batch's keys must stay an index probe, however many rows follow."""
    url = await create_database(pg_server_url, "roomlog_plans")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)  # one connection: one plan cache
    appender = Appender(pool, InlineProjections(), writers=1)
    appender.start()
    try:
        t = "tenant_plans"
        rooms = [await _new_room(appender, t) for _ in range(3)]
        # Plans are cached now, on near-empty tables. Grow `events` well past what a scan costs nothing for.
        for n in range(40):
            await asyncio.gather(*(
                appender.append(room, [_message(f"m{n}", "alice")], tenant_id=t, metadata=_meta(t),
                                idempotency_key=f"{room}:{n}", guard=MemberOf(t, room, "alice"))
                for room in rooms
            ))
        await pool.execute(f"INSERT INTO events (stream_id, seq, tenant_id, type, data, metadata) "
                           f"SELECT 'filler', g, '{t}', 'filler', '{{}}', '{{}}' FROM generate_series(1, 20000) g")
        before = await _sequential_scans(pool)
        for n in range(10):
            results = await asyncio.gather(*(
                appender.append(room, [_message(f"again{n}", "alice")], tenant_id=t, metadata=_meta(t),
                                idempotency_key=f"{room}:{n}", guard=MemberOf(t, room, "alice"))
                for room in rooms
            ))
            assert all(r.duplicate for r in results)
            await appender.append(rooms[0], [_message()], tenant_id=t, metadata=_meta(t),
                                  idempotency_key=f"new{n}", guard=MemberOf(t, rooms[0], "alice"))
        assert await _sequential_scans(pool) == before
    finally:
        await appender.stop()
        await pool.close()


async def _sequential_scans(pool: asyncpg.Pool) -> dict[str, int]:
    """Sequential scans so far of the tables an append reads by key."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with pool.acquire() as conn:  # a new transaction: statistics snapshots are per transaction
        rows = await conn.fetch("SELECT relname, seq_scan FROM pg_stat_user_tables "
                                "WHERE relname IN ('events', 'rooms', 'members')")
    return {r["relname"]: r["seq_scan"] for r in rows}


@pytest.mark.parametrize("error", [
    # What asyncpg raised in tests/system/test_supervisor.py while the postmaster was SIGKILLed and restarted.
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.InterfaceError("connection is closed"),
    ConnectionRefusedError(111, "Connection refused"),
], ids=type)
def test_a_lost_database_connection_translates_to_service_unavailable(error: Exception) -> None:
    assert isinstance(translate_database_error(error), Unavailable)


def test_a_query_error_is_not_translated_to_service_unavailable() -> None:
    error = asyncpg.exceptions.UndefinedTableError('relation "nope" does not exist')
    assert translate_database_error(error) is error


async def test_append_together_writes_every_stream_or_none(appender: Appender, pool: asyncpg.Pool,
                                                          tenant: Tenant) -> None:
    first, second = await _new_room(appender, tenant.tenant_id), await _new_room(appender, tenant.tenant_id)
    meta = _meta(tenant.tenant_id)
    at = {room: (await _seqs(pool, room))[-1] for room in (first, second)}
    with pytest.raises(WrongExpectedSeq):  # the second's condition fails: the first is not written either
        await appender.append_together([
            AppendRequest(first, tenant.tenant_id, [_message()], meta, expected_seq=at[first]),
            AppendRequest(second, tenant.tenant_id, [_message()], meta, expected_seq=0),
        ])
    assert {room: (await _seqs(pool, room))[-1] for room in (first, second)} == at
    written = await appender.append_together([
        AppendRequest(first, tenant.tenant_id, [_message()], meta, expected_seq=at[first]),
        AppendRequest(second, tenant.tenant_id, [_message()], meta, expected_seq=at[second]),
    ])
    assert [r.last_seq for r in written] == [at[first] + 1, at[second] + 1]
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE room_id = ANY($1::text[])", [first, second]) == 2
