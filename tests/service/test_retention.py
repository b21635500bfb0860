"""service/commands/retention.py: settings.message_retention_days and the job that redacts expired messages."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from eventstore.append import Appender, AppendResult
from projections.inline import InlineProjections
from service.commands.retention import RetentionJob
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.service.test_inbox import send
from tests.service.test_rooms import create_room, get_room

LATER = timedelta(days=3)  # past a retention of 2 days for anything sent during the test


async def _deletions(pool: asyncpg.Pool, room_id: str) -> Counter[str]:
    """How many message.deleted events the log holds for each message of the room (retention's only)."""
    rows = await pool.fetch("SELECT data->>'message_id' AS id FROM events WHERE stream_id = $1"
                            " AND type = 'message.deleted' AND data->>'reason' = 'retention'", room_id)
    return Counter(r["id"] for r in rows)


async def _room_with_messages(client: httpx.AsyncClient, tenant: Tenant, count: int,
                              days: int | None = 2) -> tuple[str, list[str]]:
    settings = {"message_retention_days": days} if days is not None else {}
    room = await create_room(client, tenant, "alice", ["bob"], settings=settings)
    sent = [await send(client, tenant, room["room_id"], "bob", f"old news {i}") for i in range(count)]
    return room["room_id"], [s["message_id"] for s in sent]


class _Signalling(Appender):
    """An appender that tells when an append has committed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, InlineProjections(), writers=1)
        self.committed = asyncio.Event()

    async def append(self, *args: Any, **kwargs: Any) -> AppendResult:
        result = await super().append(*args, **kwargs)
        self.committed.set()
        return result


@pytest.fixture
async def second_instance(database_url: str) -> AsyncIterator[Appender]:
    """An appender on a pool of its own, as another instance of the service would have."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    appender = Appender(pool, InlineProjections(), writers=2)
    appender.start()
    try:
        yield appender
    finally:
        await appender.stop()
        await pool.close()


async def test_retention_is_a_room_setting_validated_on_create_and_patch(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", [], settings={"message_retention_days": 30})
    assert room["settings"] == {"who_can_post": "all_members", "message_retention_days": 30}
    patched = await client.patch(f"/rooms/{room['room_id']}", json={"settings": {"message_retention_days": 7}},
                                 headers=tenant.as_user("alice"))
    assert patched.json()["settings"]["message_retention_days"] == 7
    bad = await client.patch(f"/rooms/{room['room_id']}", json={"settings": {"message_retention_days": 0}},
                             headers=tenant.as_user("alice"))
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "settings.message_retention_days")


async def test_the_job_redacts_only_expired_messages_and_reads_show_them_redacted(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    rid, ids = await _room_with_messages(client, tenant, 3)
    kept, _ = await _room_with_messages(client, tenant, 1, days=None)
    job = RetentionJob(runtime.pool, runtime.appender, clock=lambda: datetime.now(UTC))
    now = datetime.now(UTC)
    await job.run_until_done(now=now + timedelta(days=1))  # younger than the retention: nothing to do
    assert await _deletions(runtime.pool, rid) == Counter()

    await job.run_until_done(now=now + LATER)
    assert await _deletions(runtime.pool, rid) == Counter({i: 1 for i in ids})
    assert await _deletions(runtime.pool, kept) == Counter()
    bob = tenant.as_user("bob")
    messages = (await client.get(f"/rooms/{rid}/messages", headers=bob)).json()
    assert [(m["content"], m["deleted_at"] is not None) for m in messages] == [("", True)] * 3
    events = (await client.get(f"/rooms/{rid}/events?after_seq=0", headers=bob)).json()
    assert [e["data"]["content"] for e in events if e["type"] == "message.sent"] == [""] * 3
    found = await client.get("/search/messages", params={"q": "news", "room_id": rid}, headers=bob)
    assert found.json()["data"] == []
    assert (await get_room(client, tenant, "bob", rid))["last_message"]["preview"] == ""


async def test_a_run_stopped_midway_and_run_again_redacts_each_expired_message_exactly_once(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    rid, ids = await _room_with_messages(client, tenant, 6)
    now = datetime.now(UTC) + LATER
    appender = _Signalling(runtime.pool)
    appender.start()
    try:
        run = asyncio.create_task(RetentionJob(runtime.pool, appender, clock=lambda: now, batch=2)
                                  .run_until_done(now=now))
        await asyncio.wait_for(appender.committed.wait(), 10)
        run.cancel()  # killed mid-run: some redactions committed, the rest not
        with pytest.raises(asyncio.CancelledError):
            await run
    finally:
        await appender.stop()
    assert len(await _deletions(runtime.pool, rid)) < len(ids)

    await RetentionJob(runtime.pool, runtime.appender, clock=lambda: now, batch=2).run_until_done(now=now)
    assert await _deletions(runtime.pool, rid) == Counter({i: 1 for i in ids})


async def test_two_instances_running_the_job_at_once_never_double_a_redaction(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime, second_instance: Appender
) -> None:
    rid, ids = await _room_with_messages(client, tenant, 8)
    now = datetime.now(UTC) + LATER
    jobs = [RetentionJob(runtime.pool, runtime.appender, clock=lambda: now, batch=3),
            RetentionJob(runtime.pool, second_instance, clock=lambda: now, batch=3)]
    count = "SELECT count(*) FROM events WHERE type = 'message.deleted' AND data->>'reason' = 'retention'"
    before = await runtime.pool.fetchval(count)
    done = await asyncio.gather(*(job.run_until_done(now=now) for job in jobs))
    assert await _deletions(runtime.pool, rid) == Counter({i: 1 for i in ids})
    # Other tests' rooms may have had messages due too: the runs say exactly what they appended, none twice.
    assert sum(done) == await runtime.pool.fetchval(count) - before >= len(ids)


async def test_reads_search_and_catch_up_hide_expired_content_before_the_job_has_run(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, ids = await _room_with_messages(client, tenant, 2)
    kept, _ = await _room_with_messages(client, tenant, 1, days=None)
    later = datetime.now(UTC) + LATER
    monkeypatch.setattr(runtime, "wall_clock", lambda: later)
    bob = tenant.as_user("bob")
    messages = (await client.get(f"/rooms/{rid}/messages", headers=bob)).json()
    assert [m["content"] for m in messages] == ["", ""]
    one = (await client.get(f"/rooms/{rid}/messages/{ids[0]}", headers=bob)).json()
    assert one["content"] == ""
    events = (await client.get(f"/rooms/{rid}/events?after_seq=0", headers=bob)).json()
    assert [e["data"]["content"] for e in events if e["type"] == "message.sent"] == ["", ""]
    found = await client.get("/search/messages", params={"q": "news", "room_id": rid}, headers=bob)
    assert found.json()["data"] == []
    assert [m["content"] for m in (await client.get(f"/rooms/{kept}/messages", headers=bob)).json()] == ["old news 0"]
    listed = {r["room_id"]: r["last_message"] for r in (await client.get("/rooms", headers=bob)).json()}
    assert (listed[rid]["preview"], listed[rid]["deleted"]) == ("", True)
    assert (listed[kept]["preview"], listed[kept]["deleted"]) == ("old news 0", False)
    assert await _deletions(runtime.pool, rid) == Counter()  # the log still holds them until the job runs
