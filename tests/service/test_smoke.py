"""The happy path through the HTTP API: create a room, send, read back."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant


async def test_send_then_read_returns_the_message_with_its_seq(client: httpx.AsyncClient, tenant: Tenant) -> None:
    alice = tenant.as_user("alice")
    room = (await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=alice)).json()
    sent = await client.post(f"/rooms/{room['room_id']}/messages", json={"content": "hi"}, headers=alice)
    assert sent.status_code == 201
    assert sent.json()["seq"] == room["last_seq"] + 1
    listed = (await client.get(f"/rooms/{room['room_id']}/messages", headers=tenant.as_user("bob"))).json()
    assert [m["content"] for m in listed] == ["hi"]
    assert listed[0]["seq"] == sent.json()["seq"]
