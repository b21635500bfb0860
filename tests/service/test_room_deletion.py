"""DELETE /rooms/{id}?scope=for_everyone: a room.deleted event ends the room for all of its members."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.service.test_inbox import inbox, send
from tests.service.test_rooms import create_room, get_room
from tests.service.test_webhooks import live_url, online

__all__ = ["live_url"]


async def delete_for_everyone(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str) -> httpx.Response:
    return await client.delete(f"/rooms/{room_id}?scope=for_everyone", headers=tenant.as_user(user))


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_deleted_room_reads_redacted_and_leaves_every_inbox(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    rid = room["room_id"]
    kept = await create_room(client, tenant, "alice", ["bob"])
    first = await send(client, tenant, rid, "alice", "secret plans", meta={"k": "v"}, mentions=["bob"])
    await client.patch(f"/rooms/{rid}/messages/{first['message_id']}", json={"content": "secret edit"},
                       headers=tenant.as_user("alice"))
    await send(client, tenant, rid, "bob", "secret reply")

    deleted = await delete_for_everyone(client, tenant, rid, "alice")
    assert deleted.status_code == 200, deleted.text

    for user in ("alice", "bob"):
        assert [r["room_id"] for r in await inbox(client, tenant, user)] == [kept["room_id"]]
        unread = (await client.get("/unread", headers=tenant.as_user(user))).json()
        assert [r["room_id"] for r in unread["rooms"]] == [kept["room_id"]]
    assert (await client.get("/mentions", headers=tenant.as_user("bob"))).json() == []
    assert (await get_room(client, tenant, "bob", rid))["deleted_at"] is not None

    messages = (await client.get(f"/rooms/{rid}/messages", headers=tenant.as_user("bob"))).json()
    assert [(m["content"], m["meta"], m["deleted_at"] is not None) for m in messages] == [("", None, True)] * 2
    events = (await client.get(f"/rooms/{rid}/events?after_seq=0", headers=tenant.as_user("bob"))).json()
    assert not [e for e in events if "secret" in json.dumps(e["data"])]
    assert events[-1]["type"] == "room.deleted" and events[-1]["data"] == {"deleted_by": "alice"}
    hits = (await client.get("/search/messages", params={"q": "secret"}, headers=tenant.as_user("bob"))).json()["data"]
    assert hits == []


async def test_a_deleted_room_takes_no_more_writes(client: httpx.AsyncClient, tenant: Tenant, live_url: str) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    rid = room["room_id"]
    assert (await delete_for_everyone(client, tenant, rid, "alice")).status_code == 200
    bob = tenant.as_user("bob")
    refused = [
        await client.post(f"/rooms/{rid}/messages", json={"content": "late"}, headers=bob),
        await client.patch(f"/rooms/{rid}", json={"name": "late"}, headers=tenant.as_user("alice")),
        await client.post(f"/rooms/{rid}/members", json={"user_ids": ["carol"]}, headers=tenant.as_user("alice")),
        await delete_for_everyone(client, tenant, rid, "alice"),
    ]
    assert [_error(r) for r in refused] == [(409, "ROOM_DELETED")] * 4
    async with online(client, tenant, "bob", live_url) as ws:
        await ws.send(json.dumps({"type": "send", "room_id": rid, "content": "late", "client_msg_id": "c1"}))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "error":
            pass
    assert (frame["code"], frame["client_msg_id"]) == ("ROOM_DELETED", "c1")


async def test_room_admins_or_either_member_of_a_dm_delete_for_everyone(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    group = await create_room(client, tenant, "alice", ["bob"])
    assert _error(await delete_for_everyone(client, tenant, group["room_id"], "bob")) == (403, "NOT_ROOM_ADMIN")
    assert _error(await delete_for_everyone(client, tenant, group["room_id"], "mallory")) == (403, "NOT_A_MEMBER")
    assert _error(await delete_for_everyone(client, other_tenant, group["room_id"], "alice")) == (404,
                                                                                                   "ROOM_NOT_FOUND")
    dm = await create_room(client, tenant, "alice", ["bob"], type_="dm")
    assert (await delete_for_everyone(client, tenant, dm["room_id"], "bob")).status_code == 200


async def test_sends_racing_the_deletion_land_before_it_or_are_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    rid = room["room_id"]

    async def post(i: int) -> httpx.Response:
        return await client.post(f"/rooms/{rid}/messages", json={"content": str(i)}, headers=tenant.as_user("bob"))

    outcomes: list[Any] = await asyncio.gather(*(post(i) for i in range(10)),
                                               delete_for_everyone(client, tenant, rid, "alice"),
                                               *(post(i) for i in range(10, 20)))
    assert outcomes[10].status_code == 200
    sends = outcomes[:10] + outcomes[11:]
    assert {r.status_code for r in sends} <= {201, 409}
    events = (await client.get(f"/rooms/{rid}/events?after_seq=0", headers=tenant.as_user("bob"))).json()
    assert events[-1]["type"] == "room.deleted"
    assert sorted(r.json()["seq"] for r in sends if r.status_code == 201) == [
        e["seq"] for e in events if e["type"] == "message.sent"]


async def test_a_tenant_admin_outside_the_room_deletes_it_for_everyone(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    deleted = await delete_for_everyone(client, tenant, room["room_id"], "admin")
    assert deleted.json() == {"room_id": room["room_id"], "is_muted": False, "is_archived": False}
    assert await inbox(client, tenant, "bob") == []
