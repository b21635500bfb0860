"""projections/catchup.py: a catch-up projection applies each event once, with its checkpoint, across failures and
replays."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventstore.append import Appender
from eventstore.types import Connection
from projections.catchup import CatchUpRunner, checkpoint_of, events_behind
from projections.inline import InlineProjections
from projections.replay import replay
from projections.search import SearchProjection
from schemas.events import EventMetadata, MemberJoined, MessageSent, RoomCreated
from service.identity.ids import new_id
from tests.conftest import create_database

TENANT = "tenant_catchup"


@pytest.fixture
async def fresh(pg_server_url: str) -> AsyncIterator[tuple[str, asyncpg.Pool, Appender]]:
    """A database of its own (so positions and checkpoints are this test's alone), its pool and appender."""
    url = await create_database(pg_server_url, "roomlog_catchup")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    appender = Appender(pool, InlineProjections(), writers=1)
    appender.start()
    yield url, pool, appender
    await appender.stop()
    await pool.close()


async def _messages(appender: Appender, count: int) -> str:
    room_id = new_id("room")
    meta = EventMetadata(tenant_id=TENANT, actor="alice")
    await appender.append(room_id, [RoomCreated(room_id=room_id, room_type="group", created_by="alice"),
                                    MemberJoined(user_id="alice", role="admin", added_by="alice")],
                          tenant_id=TENANT, metadata=meta, create_stream=True)
    for i in range(count):
        await appender.append(room_id, [MessageSent(message_id=new_id("msg"), sender_id="alice", content=f"word{i}")],
                              tenant_id=TENANT, metadata=meta)
    return room_id


async def _drain(runner: CatchUpRunner, conn: Connection) -> None:
    while await runner.follow_once(conn):
        pass


class _FailsAfterWriting(SearchProjection):
    """The search projection, failing after its writes (a last statement that cannot run): nothing of the batch may
    stay."""

    statements = (*SearchProjection.statements, " SELECT 1 / 0 FROM new_events")


async def test_a_failed_batch_leaves_neither_rows_nor_checkpoint_and_the_retry_applies_once(
    fresh: tuple[str, asyncpg.Pool, Appender]
) -> None:
    url, pool, appender = fresh
    await _messages(appender, 5)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await CatchUpRunner(url, _FailsAfterWriting()).follow_once(conn)
        assert await checkpoint_of(conn, "search") == 0
        assert await conn.fetchval("SELECT count(*) FROM message_search") == 0

        runner = CatchUpRunner(url, SearchProjection(), batch_size=3)  # several batches
        await _drain(runner, conn)
        await _drain(runner, conn)  # nothing more to do
        assert await conn.fetchval("SELECT count(*) FROM message_search") == 5
        assert await checkpoint_of(conn, "search") == await conn.fetchval("SELECT max(position) FROM events")


async def test_a_new_runner_resumes_from_the_checkpoint(fresh: tuple[str, asyncpg.Pool, Appender]) -> None:
    url, pool, appender = fresh
    await _messages(appender, 3)
    async with pool.acquire() as conn:
        assert (await events_behind(conn))["search"] == 5  # the room's two events and three messages
        await _drain(CatchUpRunner(url, SearchProjection()), conn)
        assert (await events_behind(conn))["search"] == 0
        await _messages(appender, 2)
        # Another instance's runner (or this one after a restart) starts from the stored checkpoint.
        await _drain(CatchUpRunner(url, SearchProjection()), conn)
        assert await conn.fetchval("SELECT count(*) FROM message_search") == 5
        assert await conn.fetchval("SELECT count(DISTINCT message_id) FROM message_search") == 5


async def test_replay_rebuilds_it_sets_its_checkpoint_and_the_runner_carries_on_from_there(
    fresh: tuple[str, asyncpg.Pool, Appender]
) -> None:
    url, pool, appender = fresh
    await _messages(appender, 4)
    runner = CatchUpRunner(url, SearchProjection())
    async with pool.acquire() as conn:
        await _drain(runner, conn)
    report = await replay(pool, [SearchProjection()], verify=True)
    assert (report.differences, report.swapped) == ({"message_search": 0}, True)
    async with pool.acquire() as conn:
        assert await checkpoint_of(conn, "search") == await conn.fetchval("SELECT max(position) FROM events")
        await _messages(appender, 2)
        await _drain(runner, conn)  # the same runner: it re-reads the checkpoint the swap set
        assert await conn.fetchval("SELECT count(*) FROM message_search") == 6
