"""projections/messages.py: message ordinals stay gapless and unique under concurrent writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventstore.append import Appender
from projections.inline import InlineProjections
from projections.replay import projection_by_name, replay
from schemas.events import EventMetadata, MemberJoined, MessageSent, RoomCreated
from service.identity.ids import new_id
from tests.conftest import create_database, database_name

WRITERS = 4  # appenders on pools of their own, as several instances would be
PER_WRITER = 25
SENDERS = ("alice", "bob")


@pytest.fixture
async def fresh_url(pg_server_url: str) -> AsyncIterator[str]:
    """A freshly migrated database of its own, so replay covers only this test's log."""
    url = await create_database(pg_server_url, "roomlog_ordinals")
    try:
        yield url
    finally:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'DROP DATABASE "{database_name(url)}" WITH (FORCE)')
        finally:
            await admin.close()


async def _write(url: str, room: str, tenant: str, writer: int) -> None:
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    appender = Appender(pool, InlineProjections(), writers=2)
    appender.start()
    try:
        await asyncio.gather(*(
            appender.append(room, [MessageSent(message_id=new_id("msg"), sender_id=SENDERS[i % 2],
                                               content=f"{writer}-{i}")],
                            tenant_id=tenant, metadata=EventMetadata(tenant_id=tenant, actor=SENDERS[i % 2]))
            for i in range(PER_WRITER)
        ))
    finally:
        await appender.stop()
        await pool.close()


async def test_concurrent_writers_to_one_room_number_its_messages_1_to_n_as_replay_does(fresh_url: str) -> None:
    tenant, room = "tn_ordinals", new_id("room")
    pool = await asyncpg.create_pool(fresh_url, min_size=1, max_size=2)
    try:
        setup = Appender(pool, InlineProjections(), writers=1)
        setup.start()
        try:
            await setup.append(room, [RoomCreated(room_id=room, room_type="group", created_by="alice"),
                                      *(MemberJoined(user_id=u, role="member", added_by="alice") for u in SENDERS)],
                               tenant_id=tenant, metadata=EventMetadata(tenant_id=tenant, actor="alice"),
                               create_stream=True)
        finally:
            await setup.stop()
        await asyncio.gather(*(_write(fresh_url, room, tenant, w) for w in range(WRITERS)))

        rows = await pool.fetch("SELECT sender_id, ordinal, sender_ordinal FROM messages WHERE room_id = $1"
                                " ORDER BY seq", room)
        total = WRITERS * PER_WRITER
        assert [r["ordinal"] for r in rows] == list(range(1, total + 1))
        for sender in SENDERS:
            mine = [r["sender_ordinal"] for r in rows if r["sender_id"] == sender]
            assert mine == list(range(1, len(mine) + 1))
        report = await replay(pool, [projection_by_name("messages")], verify=True)
        assert set(report.differences.values()) == {0}, report.differences
    finally:
        await pool.close()
