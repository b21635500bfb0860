"""The inbox over HTTP: GET /rooms as a client renders it, mentions, mute, archive and GET /unread."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.service.test_rooms import create_room, get_room
from tests.service.test_webhooks import live_url, online

__all__ = ["live_url"]  # the fixture, shared with the webhook tests: a real port for WebSockets


async def send(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str, text: str,
               **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/rooms/{room_id}/messages", json={"content": text, **fields},
                                 headers=tenant.as_user(user))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def inbox(client: httpx.AsyncClient, tenant: Tenant, user: str, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/rooms?{query}", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    rooms: list[dict[str, Any]] = response.json()
    return rooms


async def call(client: httpx.AsyncClient, method: str, path: str, tenant: Tenant, user: str) -> dict[str, Any]:
    response = await client.request(method, path, headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_inbox_items_carry_what_a_client_renders(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"], display_name="Ops", description="on call")
    first = await send(client, tenant, room["room_id"], "alice", "hello @bob", mentions=["bob"])
    await send(client, tenant, room["room_id"], "bob", "hi")
    last = await send(client, tenant, room["room_id"], "carol", "x" * 300)
    [item] = await inbox(client, tenant, "bob")
    assert {k: item[k] for k in ("created_by", "display_name", "description", "member_count", "read_seq",
                                 "unread_count", "mention_count", "is_muted", "is_archived")} == {
        "created_by": "alice", "display_name": "Ops", "description": "on call", "member_count": 3, "read_seq": 0,
        "unread_count": 2, "mention_count": 1, "is_muted": False, "is_archived": False,
    }
    assert item["last_message"] == {"message_id": last["message_id"], "seq": last["seq"], "sender_id": "carol",
                                    "preview": "x" * 140, "deleted": False}
    assert item["last_message_at"] == last["created_at"]
    read = await client.post(f"/rooms/{room['room_id']}/read", json={"seq": first["seq"]},
                             headers=tenant.as_user("bob"))
    assert read.json() == {"room_id": room["room_id"], "read_seq": first["seq"], "unread_count": 1, "mention_count": 0}
    assert await get_room(client, tenant, "bob", room["room_id"]) == {**item, "read_seq": first["seq"],
                                                                      "unread_count": 1, "mention_count": 0}


async def test_a_deleted_last_message_is_listed_redacted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    sent = await send(client, tenant, room["room_id"], "alice", "oops")
    deleted = await client.delete(f"/rooms/{room['room_id']}/messages/{sent['message_id']}",
                                  headers=tenant.as_user("alice"))
    assert deleted.status_code == 200
    [item] = await inbox(client, tenant, "bob")
    assert item["last_message"] == {"message_id": sent["message_id"], "seq": sent["seq"], "sender_id": "alice",
                                    "preview": "", "deleted": True}
    assert item["unread_count"] == 0


async def test_inbox_is_ordered_by_last_activity_and_pages_by_cursor(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = [(await create_room(client, tenant, "alice", []))["room_id"] for _ in range(4)]
    await send(client, tenant, ids[1], "alice", "bump")  # the second room becomes the most recent
    expected = [ids[1], ids[3], ids[2], ids[0]]
    seen, cursor = [], ""
    while True:
        response = await client.get(f"/rooms?limit=3{cursor}", headers=tenant.as_user("alice"))
        seen += [r["room_id"] for r in response.json()]
        if response.headers["X-Has-More"] == "false":
            assert "X-Next-Cursor" not in response.headers
            break
        cursor = "&cursor=" + response.headers["X-Next-Cursor"]
    assert seen == expected
    assert [r["room_id"] for r in await inbox(client, tenant, "alice", "limit=2&offset=1")] == expected[1:3]


async def test_inbox_filters_by_type_and_a_bad_filter_or_cursor_is_400(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    group = await create_room(client, tenant, "alice", ["bob"])
    dm = await create_room(client, tenant, "alice", ["bob"], type_="dm")
    assert [r["room_id"] for r in await inbox(client, tenant, "bob", "type=dm")] == [dm["room_id"]]
    assert [r["room_id"] for r in await inbox(client, tenant, "bob", "type=group")] == [group["room_id"]]
    for query, field in [("type=team", "type"), ("archived=yes", "archived"), ("muted=1", "muted"),
                         ("cursor=bm90LWEtY3Vyc29y", "cursor")]:
        response = await client.get(f"/rooms?{query}", headers=tenant.as_user("bob"))
        assert (response.status_code, response.json()["error"]["field"]) == (400, field), query


async def test_mentions_name_members_or_the_whole_room(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"])
    refused = await client.post(f"/rooms/{room['room_id']}/messages",
                                json={"content": "hey", "mentions": ["mallory"]}, headers=tenant.as_user("alice"))
    assert (refused.status_code, refused.json()["error"]["field"]) == (400, "mentions")
    # Outsiders learn only that they are outsiders, not who the members are.
    outsider = await client.post(f"/rooms/{room['room_id']}/messages",
                                 json={"content": "hey", "mentions": ["bob"]}, headers=tenant.as_user("mallory"))
    assert (outsider.status_code, outsider.json()["error"]["code"]) == (403, "NOT_A_MEMBER")
    nowhere = await client.post("/rooms/room_missing/messages",
                                json={"content": "hey", "mentions": ["bob"]}, headers=tenant.as_user("alice"))
    assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (404, "ROOM_NOT_FOUND")
    await send(client, tenant, room["room_id"], "alice", "all hands", mentions=["@room"])
    await send(client, tenant, room["room_id"], "alice", "carol only", mentions=["carol", "carol"])
    counts = {u: (await inbox(client, tenant, u))[0]["mention_count"] for u in ("alice", "bob", "carol")}
    assert counts == {"alice": 0, "bob": 1, "carol": 2}
    listed = (await client.get(f"/rooms/{room['room_id']}/messages", headers=tenant.as_user("bob"))).json()
    assert [m["mentions"] for m in listed] == [["@room"], ["carol"]]


async def test_archive_hides_a_room_until_a_new_message_unless_muted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    loud = await create_room(client, tenant, "alice", ["bob"])
    quiet = await create_room(client, tenant, "alice", ["bob"])
    rooms = (loud["room_id"], quiet["room_id"])
    for rid in rooms:
        state = await call(client, "POST", f"/rooms/{rid}/archive", tenant, "bob")
        assert state == {"room_id": rid, "is_muted": False, "is_archived": True}
    muted = await call(client, "POST", f"/rooms/{quiet['room_id']}/mute", tenant, "bob")
    assert muted == {"room_id": quiet["room_id"], "is_muted": True, "is_archived": True}
    assert await inbox(client, tenant, "bob") == []
    assert {r["room_id"] for r in await inbox(client, tenant, "bob", "archived=true")} == set(rooms)
    for rid in rooms:
        await send(client, tenant, rid, "alice", "news")
    assert [r["room_id"] for r in await inbox(client, tenant, "bob")] == [loud["room_id"]]
    assert [r["room_id"] for r in await inbox(client, tenant, "bob", "archived=true")] == [quiet["room_id"]]
    assert [r["room_id"] for r in await inbox(client, tenant, "bob", "archived=true&muted=true")] == [quiet["room_id"]]
    await call(client, "DELETE", f"/rooms/{quiet['room_id']}/archive", tenant, "bob")
    unmuted = await call(client, "DELETE", f"/rooms/{quiet['room_id']}/mute", tenant, "bob")
    assert unmuted == {"room_id": quiet["room_id"], "is_muted": False, "is_archived": False}
    assert [r["room_id"] for r in await inbox(client, tenant, "bob", "muted=false")] == list(rooms)[::-1]


async def test_unread_lists_every_room_with_totals_over_unmuted_ones(client: httpx.AsyncClient, tenant: Tenant) -> None:
    one = await create_room(client, tenant, "alice", ["bob"])
    two = await create_room(client, tenant, "alice", ["bob"])
    await send(client, tenant, one["room_id"], "alice", "a")
    await send(client, tenant, two["room_id"], "alice", "b")
    await send(client, tenant, two["room_id"], "alice", "c @bob", mentions=["bob"])
    await call(client, "POST", f"/rooms/{two['room_id']}/mute", tenant, "bob")
    unread = await call(client, "GET", "/unread", tenant, "bob")
    assert unread["totals"] == {"unread_count": 1, "mention_count": 1, "rooms_with_unread": 1}
    assert [(r["room_id"], r["unread_count"], r["mention_count"], r["is_muted"]) for r in unread["rooms"]] == [
        (two["room_id"], 2, 1, True), (one["room_id"], 1, 0, False),
    ]


async def test_members_carry_display_name_avatar_and_status(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await client.post("/users", json={"user_id": "dora", "display_name": "Dora D", "role": "member"},
                                headers=tenant.as_user("admin"))
    assert created.status_code == 201, created.text
    room = await create_room(client, tenant, "alice", ["dora"])
    members = (await client.get(f"/rooms/{room['room_id']}/members", headers=tenant.as_user("alice"))).json()
    assert [(m["user_id"], m["display_name"], m["avatar_url"], m["status"]) for m in members] == [
        ("alice", None, None, "online"), ("dora", "Dora D", None, "offline"),  # alice just made calls
    ]


async def test_display_name_and_description_change_with_patch(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [], display_name="Old")
    patched = await client.patch(f"/rooms/{room['room_id']}", json={"display_name": "New", "description": "d"},
                                 headers=tenant.as_user("alice"))
    assert (patched.json()["display_name"], patched.json()["description"]) == ("New", "d")
    cleared = await client.patch(f"/rooms/{room['room_id']}", json={"description": None},
                                 headers=tenant.as_user("alice"))
    assert (cleared.json()["display_name"], cleared.json()["description"]) == ("New", None)


async def test_mute_and_archive_are_for_members_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    for method, path in [("POST", "mute"), ("DELETE", "mute"), ("POST", "archive"), ("DELETE", "archive")]:
        response = await client.request(method, f"/rooms/{room['room_id']}/{path}", headers=tenant.as_user("eve"))
        assert (response.status_code, response.json()["error"]["code"]) == (403, "NOT_A_MEMBER")
        missing = await client.request(method, f"/rooms/room_nope/{path}", headers=tenant.as_user("eve"))
        assert missing.status_code == 404


async def test_mentions_lists_messages_of_others_that_mention_the_caller_newest_first(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    one = await create_room(client, tenant, "alice", ["bob"])
    two = await create_room(client, tenant, "carol", ["bob"])
    first = await send(client, tenant, one["room_id"], "alice", "bob?", mentions=["bob"])
    await send(client, tenant, one["room_id"], "bob", "self", mentions=["bob"])
    gone = await send(client, tenant, two["room_id"], "carol", "gone", mentions=["@room"])
    await client.delete(f"/rooms/{two['room_id']}/messages/{gone['message_id']}", headers=tenant.as_user("carol"))
    await send(client, tenant, two["room_id"], "carol", "plain")
    last = await send(client, tenant, two["room_id"], "carol", "all of you", mentions=["@here"])
    response = await client.get("/mentions?limit=1", headers=tenant.as_user("bob"))
    assert response.headers["X-Has-More"] == "true"
    assert [(m["room_id"], m["message"]["message_id"]) for m in response.json()] == [(two["room_id"],
                                                                                     last["message_id"])]
    listed = (await client.get("/mentions", headers=tenant.as_user("bob"))).json()
    assert [m["message"]["message_id"] for m in listed] == [last["message_id"], first["message_id"]]
    assert listed[1]["message"]["mentions"] == ["bob"]


async def test_delete_for_me_clears_the_callers_history_and_hides_the_room_until_a_new_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    rid = room["room_id"]
    old = await send(client, tenant, rid, "alice", "old @bob", mentions=["bob"])
    cleared = await client.delete(f"/rooms/{rid}?scope=for_me", headers=tenant.as_user("bob"))
    assert cleared.json() == {"room_id": rid, "is_muted": False, "is_archived": False}
    assert await inbox(client, tenant, "bob") == []
    assert (await call(client, "GET", "/unread", tenant, "bob"))["rooms"] == []
    assert (await call(client, "GET", "/mentions", tenant, "bob")) == []
    assert [r["room_id"] for r in await inbox(client, tenant, "alice")] == [rid]  # only for bob
    assert (await get_room(client, tenant, "bob", rid))["read_seq"] == old["seq"]
    new = await send(client, tenant, rid, "alice", "new")
    [item] = await inbox(client, tenant, "bob")
    assert (item["room_id"], item["read_seq"], item["unread_count"], item["mention_count"]) == (rid, old["seq"], 1, 0)
    listed = (await client.get(f"/rooms/{rid}/messages", headers=tenant.as_user("bob"))).json()
    assert [m["message_id"] for m in listed] == [new["message_id"]]
    events = (await client.get(f"/rooms/{rid}/events", headers=tenant.as_user("bob"))).json()
    assert [e["seq"] for e in events] == [new["seq"]]
    assert len((await client.get(f"/rooms/{rid}/messages", headers=tenant.as_user("alice"))).json()) == 2


async def test_delete_room_needs_a_known_scope(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    for query in ("", "?scope=everything"):
        response = await client.delete(f"/rooms/{room['room_id']}{query}", headers=tenant.as_user("alice"))
        assert (response.status_code, response.json()["error"]["field"]) == (400, "scope"), query


async def test_public_channels_are_discovered_and_joined_by_anyone_private_ones_are_invite_only(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    public = await create_room(client, tenant, "alice", [], type_="channel", visibility="public")
    private = await create_room(client, tenant, "alice", [], type_="channel")
    assert (public["visibility"], private["visibility"]) == ("public", "private")
    discovered = (await client.get("/rooms?discover=public", headers=tenant.as_user("zed"))).json()
    assert [(r["room_id"], r["member_count"], r["read_seq"]) for r in discovered] == [(public["room_id"], 1, 0)]
    joined = await client.post(f"/rooms/{public['room_id']}/join", headers=tenant.as_user("zed"))
    assert (joined.status_code, joined.json()["member_count"]) == (200, 2)
    again = await client.post(f"/rooms/{public['room_id']}/join", headers=tenant.as_user("zed"))
    assert (again.status_code, again.json()["last_seq"]) == (200, joined.json()["last_seq"])
    assert [r["room_id"] for r in await inbox(client, tenant, "zed")] == [public["room_id"]]
    refused = await client.post(f"/rooms/{private['room_id']}/join", headers=tenant.as_user("zed"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
    group = await client.post("/rooms", json={"type": "group", "visibility": "public"}, headers=tenant.as_user("zed"))
    assert (group.status_code, group.json()["error"]["field"]) == (400, "visibility")


async def test_reaction_toggle_adds_then_takes_back(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    sent = await send(client, tenant, room["room_id"], "alice", "vote")
    path = f"/rooms/{room['room_id']}/messages/{sent['message_id']}/reactions/toggle"
    first = (await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("bob"))).json()
    assert (first["added"], first["reactions"]) == (True, [{"emoji": "👍", "count": 1, "me": True}])
    second = (await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("bob"))).json()
    assert (second["added"], second["reactions"], second["seq"] > first["seq"]) == (False, [], True)
    outsider = await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("eve"))
    assert (outsider.status_code, outsider.json()["error"]["code"]) == (403, "NOT_A_MEMBER")


async def test_an_announcement_room_takes_posts_from_its_admins_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], type_="channel", settings={"who_can_post": "admins"})
    assert room["settings"] == {"who_can_post": "admins", "message_retention_days": None}
    refused = await client.post(f"/rooms/{room['room_id']}/messages", json={"content": "hi"},
                                headers=tenant.as_user("bob"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "POSTING_RESTRICTED")
    await send(client, tenant, room["room_id"], "alice", "announcement")
    opened = await client.patch(f"/rooms/{room['room_id']}", json={"settings": {"who_can_post": "all_members"}},
                                headers=tenant.as_user("alice"))
    assert opened.json()["settings"] == {"who_can_post": "all_members", "message_retention_days": None}
    await send(client, tenant, room["room_id"], "bob", "now me")
    assert (await get_room(client, tenant, "bob", room["room_id"]))["settings"] == {"who_can_post": "all_members",
                                                                                      "message_retention_days": None}
    bad = await client.patch(f"/rooms/{room['room_id']}", json={"settings": {"who_can_post": "nobody"}},
                             headers=tenant.as_user("alice"))
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "settings.who_can_post")


async def test_an_announcement_room_refuses_a_members_websocket_send_too(
    client: httpx.AsyncClient, tenant: Tenant, live_url: str
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], type_="channel", settings={"who_can_post": "admins"})
    async with online(client, tenant, "bob", live_url) as ws:
        await ws.send(json.dumps({"type": "send", "room_id": room["room_id"], "content": "hi", "client_msg_id": "c1"}))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "error":
            pass
    assert (frame["code"], frame["client_msg_id"]) == ("POSTING_RESTRICTED", "c1")


async def test_forward_copies_a_message_into_each_room_the_caller_may_post_to(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    source = await create_room(client, tenant, "alice", ["bob"])
    target = await create_room(client, tenant, "bob", [])
    closed = await create_room(client, tenant, "carol", ["bob"], type_="channel", settings={"who_can_post": "admins"})
    foreign = await create_room(client, tenant, "carol", [])
    sent = await send(client, tenant, source["room_id"], "alice", "pass it on", meta={"k": 1})
    response = await client.post(
        f"/rooms/{source['room_id']}/messages/{sent['message_id']}/forward",
        json={"room_ids": [target["room_id"], closed["room_id"], foreign["room_id"], "room_nowhere"]},
        headers=tenant.as_user("bob"),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["room_id"], r["ok"], r.get("error", {}).get("code")) for r in results] == [
        (target["room_id"], True, None), (closed["room_id"], False, "POSTING_RESTRICTED"),
        (foreign["room_id"], False, "NOT_A_MEMBER"), ("room_nowhere", False, "ROOM_NOT_FOUND"),
    ]
    [copy] = (await client.get(f"/rooms/{target['room_id']}/messages", headers=tenant.as_user("bob"))).json()
    assert (copy["message_id"], copy["sender_id"], copy["content"], copy["meta"]) == (
        results[0]["message_id"], "bob", "pass it on", {"k": 1})
    assert copy["forwarded_from"] == {"room_id": source["room_id"], "message_id": sent["message_id"]}
