"""Message search: the catch-up `search` projection and GET /search/messages."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from projections.catchup import events_behind
from tests.conftest import Tenant
from tests.service.test_messages import create_room, send

CATCH_UP_SECONDS = 10.0


async def caught_up(pool: asyncpg.Pool, projection: str = "search") -> None:
    """Wait until the catch-up projection has applied everything committed so far."""
    deadline = asyncio.get_running_loop().time() + CATCH_UP_SECONDS
    while (await events_behind(pool))[projection] > 0:
        assert asyncio.get_running_loop().time() < deadline, f"the {projection} projection did not catch up"
        await asyncio.sleep(0.02)


async def search(client: httpx.AsyncClient, tenant: Tenant, user: str, q: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/search/messages", params={"q": q, **params}, headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()
    return hits


async def test_search_finds_words_in_the_callers_rooms_newest_first(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = (await create_room(client, tenant, "alice", ["bob"]))["room_id"]
    theirs = (await create_room(client, tenant, "carol", ["dave"]))["room_id"]
    first = (await send(client, tenant, ours, "alice", "The Deploy went fine")).json()
    second = (await send(client, tenant, ours, "bob", "another deploy <b>tonight</b> & tomorrow")).json()
    await send(client, tenant, ours, "bob", "nothing to see")
    await send(client, tenant, theirs, "carol", "a deploy bob must not find")
    elsewhere = (await create_room(client, other_tenant, "alice", ["bob"]))["room_id"]
    await send(client, other_tenant, elsewhere, "alice", "deploy in another tenant")
    await caught_up(pool)

    hits = await search(client, tenant, "bob", "deploy")
    assert [h["message_id"] for h in hits] == [second["message_id"], first["message_id"]]
    assert (hits[0]["room_id"], hits[0]["seq"], hits[0]["sender_id"]) == (ours, second["seq"], "bob")
    assert "<mark>deploy</mark>" in hits[0]["snippet"]
    assert "&lt;b&gt;tonight&lt;/b&gt; &amp; tomorrow" in hits[0]["snippet"]  # content is escaped, marks are ours
    assert "<mark>Deploy</mark>" in hits[1]["snippet"]  # case-insensitive
    assert [h["message_id"] for h in await search(client, tenant, "bob", '"deploy went"')] == [first["message_id"]]
    assert [h["message_id"] for h in await search(client, tenant, "bob", "deploy -tonight")] == [first["message_id"]]
    assert [h["message_id"] for h in await search(client, tenant, "bob", "deploy", limit=1)] == [second["message_id"]]
    assert await search(client, tenant, "bob", "deploy", room_id=theirs) == []
    assert len(await search(client, tenant, "carol", "deploy")) == 1


async def test_edits_and_deletions_reach_the_index(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room_id = (await create_room(client, tenant, "alice", ["bob"]))["room_id"]
    kept = (await send(client, tenant, room_id, "alice", "first draft of the plan")).json()["message_id"]
    gone = (await send(client, tenant, room_id, "alice", "a plan to forget")).json()["message_id"]
    await caught_up(pool)
    assert len(await search(client, tenant, "bob", "plan", room_id=room_id)) == 2

    edited = await client.patch(f"/rooms/{room_id}/messages/{kept}", json={"content": "final version of the scheme"},
                                headers=tenant.as_user("alice"))
    assert edited.status_code == 200
    assert (await client.delete(f"/rooms/{room_id}/messages/{gone}", headers=tenant.as_user("alice"))).is_success
    await caught_up(pool)
    assert await search(client, tenant, "bob", "plan", room_id=room_id) == []
    assert [h["message_id"] for h in await search(client, tenant, "bob", "scheme", room_id=room_id)] == [kept]


async def test_search_terms_are_validated(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for params in ({}, {"q": ""}, {"q": "x" * 201}, {"q": "ok", "limit": "0"}):
        response = await client.get("/search/messages", params=params, headers=tenant.as_user("bob"))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    odd = await client.get("/search/messages", params={"q": '"unclosed & | ! (:*'}, headers=tenant.as_user("bob"))
    assert odd.status_code == 200 and odd.json() == []



async def test_health_reports_the_search_index_behind_by_nothing_once_caught_up(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room_id = (await create_room(client, tenant, "alice", ["bob"]))["room_id"]
    await send(client, tenant, room_id, "alice", "counted")
    await caught_up(pool)
    await caught_up(pool, "kb_search")
    assert (await client.get("/health")).json()["catch_up_behind"] == {"search": 0, "kb_search": 0}
