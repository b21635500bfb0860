"""Erasure (service/commands/erasure.py, eventstore/erasure.py, projections/erasure.py): after erasing a user,
no byte of their message content is left in any table, in JetStream or in a new export; seqs stay 1..N and
a replay of the rewritten log builds the same read models."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from eventstore.transfer import export_tenant
from projections.replay import ALL_PROJECTIONS, replay
from service.commands.erasure import erase
from service.realtime.jetstream import DELIVERIES_STREAM, EVENTS_STREAM
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.service.test_messages import create_room, send
from tests.service.test_search import caught_up


async def jetstream_payloads(js: JetStreamContext, tenant_id: str) -> list[bytes]:
    """Every stored message of the tenant in both JetStream streams: subject, headers and data."""
    found = []
    for stream, subject in ((EVENTS_STREAM, f"rl.{tenant_id}.>"), (DELIVERIES_STREAM, f"rld.{tenant_id}.>")):
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            assert msg.seq is not None
            found.append(f"{msg.subject} {msg.headers}".encode() + (msg.data or b""))
            seq = msg.seq + 1
    return found


async def published(js: JetStreamContext, tenant_id: str, needle: bytes) -> None:
    """Wait until the relay has published a message holding `needle`."""
    deadline = asyncio.get_running_loop().time() + 10
    for _ in range(1000):
        if any(needle in p for p in await jetstream_payloads(js, tenant_id)):
            return
        assert asyncio.get_running_loop().time() < deadline, "the relay did not publish"
        await asyncio.sleep(0.02)


async def tables_holding(pool: asyncpg.Pool, needle: str) -> list[str]:
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return [t for t in tables if await pool.fetchval(f'SELECT count(*) FROM public."{t}" AS t WHERE t::text LIKE $1',
                                                     f"%{needle}%")]


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def marker() -> str:
    """A token unique to this test, lower case so the search index keeps it as it is."""
    return f"zq{uuid.uuid4().hex[:12]}"


async def test_erasing_a_user_leaves_no_byte_of_their_content_anywhere(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime, marker: str
) -> None:
    pool = runtime.pool
    assert runtime.nats.client is not None
    js = runtime.nats.client.jetstream()
    room = (await create_room(client, tenant, "alice", ["bob"]))["room_id"]
    kept = await _ok(await send(client, tenant, room, "alice", f"alice keeps {marker}keep"))
    first = await _ok(await send(client, tenant, room, "bob", f"bob said {marker}", meta={"note": f"{marker}meta"}))
    await _ok(await send(client, tenant, room, "bob", f"reply {marker}reply", thread_id=kept["message_id"]))
    gone = await _ok(await send(client, tenant, room, "bob", f"deleted {marker}del"))
    bob = tenant.as_user("bob")
    await _ok(await client.patch(f"/rooms/{room}/messages/{first['message_id']}",
                                 json={"content": f"edited {marker}edit"}, headers=bob))
    await _ok(await client.delete(f"/rooms/{room}/messages/{gone['message_id']}", headers=bob))
    await caught_up(pool)
    await published(js, tenant.tenant_id, f"{marker}edit".encode())
    seqs_before = [r["seq"] for r in await pool.fetch("SELECT seq FROM events WHERE stream_id = $1 ORDER BY seq", room)]

    report = await erase(pool, js, tenant.tenant_id, user_id="bob", erased_by="admin")

    assert (report.events, report.messages) == (4, 3)  # three sends and an edit; the deletion holds no content
    assert report.jetstream_messages == 4
    bobs = [marker, f"{marker}meta", f"{marker}reply", f"{marker}edit", f"{marker}del"]
    assert set(await tables_holding(pool, f"{marker}keep")) == {"events", "messages", "message_search"}
    for needle in [f"bob said {marker}", *bobs[1:]]:
        assert await tables_holding(pool, needle) == [], needle
    payloads = await jetstream_payloads(js, tenant.tenant_id)
    assert not [p for p in payloads if any(n.encode() in p.replace(f"{marker}keep".encode(), b"") for n in bobs)]
    export = b"".join([chunk async for chunk in export_tenant(pool, tenant.tenant_id)])
    assert f"{marker}keep".encode() in export
    assert marker.encode() not in export.replace(f"{marker}keep".encode(), b"")
    assert [r["seq"] for r in await pool.fetch("SELECT seq FROM events WHERE stream_id = $1 ORDER BY seq", room)] \
        == seqs_before == list(range(1, len(seqs_before) + 1))
    record = await pool.fetchrow("SELECT seq, data FROM events WHERE stream_id = $1", f"erasures:{tenant.tenant_id}")
    assert record is not None and record["seq"] == 1 and '"user_id": "bob"' in record["data"]

    listed = await _ok(await client.get(f"/rooms/{room}/messages", headers=bob))
    assert {m["message_id"]: m["content"] for m in listed}[first["message_id"]] == ""
    report = await replay(pool, ALL_PROJECTIONS, verify=True, swap=False)
    assert set(report.differences.values()) == {0}, report.differences


async def test_a_tenant_admin_erases_a_user_over_http_and_a_second_call_finds_nothing_new(
    client: httpx.AsyncClient, tenant: Tenant, marker: str
) -> None:
    room = (await create_room(client, tenant, "alice", ["bob"]))["room_id"]
    sent = await _ok(await send(client, tenant, room, "bob", f"over http {marker}"))
    first = await _ok(await client.post("/users/bob/erase", headers=tenant.as_user("admin")))
    assert (first["events"], first["messages"]) == (1, 1)
    [message] = [m for m in await _ok(await client.get(f"/rooms/{room}/messages", headers=tenant.as_user("alice")))
                 if m["message_id"] == sent["message_id"]]
    assert message["content"] == ""
    again = await _ok(await client.post("/users/bob/erase", headers=tenant.as_user("admin")))
    assert (again["events"], again["messages"]) == (0, 0)
