"""Rooms over HTTP: create (one DM per pair), list, read, rename, and membership changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, error_of


async def create_room(
    client: httpx.AsyncClient, tenant: Tenant, creator: str, members: list[str], *, type_: str = "group",
    **fields: Any,
) -> dict[str, Any]:
    """Create a room as `creator` and return its body (fails the test unless 201)."""
    response = await client.post(
        "/rooms", json={"type": type_, "members": members, **fields}, headers=tenant.as_user(creator)
    )
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def get_room(client: httpx.AsyncClient, tenant: Tenant, user: str, room_id: str) -> dict[str, Any]:
    """The room as `user` sees it (fails the test unless 200)."""
    response = await client.get(f"/rooms/{room_id}", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    room: dict[str, Any] = response.json()
    return room


async def member_ids(client: httpx.AsyncClient, tenant: Tenant, user: str, room_id: str) -> list[str]:
    """Active member ids of the room, as `user` lists them."""
    response = await client.get(f"/rooms/{room_id}/members", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    return sorted(m["user_id"] for m in response.json())


# --- create -------------------------------------------------------------------------------------


async def test_create_group_returns_201_with_last_seq_of_created_plus_one_per_member(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/rooms",
        json={"type": "group", "members": ["bob", "carol"], "name": "Team", "metadata": {"topic": "ops"}},
        headers=tenant.as_user("alice"),
    )
    assert response.status_code == 201
    room = response.json()
    assert room["room_id"].startswith("room_")
    assert (room["type"], room["unique_key"]) == ("group", None)
    assert (room["name"], room["metadata"]) == ("Team", {"topic": "ops"})
    assert room["last_seq"] == 4  # room.created + alice + bob + carol
    assert room["created_at"]


async def test_create_room_ignores_caller_and_duplicates_in_members(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["alice", "bob", "bob"])
    assert room["last_seq"] == 3
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice", "bob"]


async def test_create_dm_has_the_pair_as_unique_key(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "zoe", ["adam"], type_="dm")
    assert room["unique_key"] == "dm:adam:zoe"
    assert room["last_seq"] == 3


async def test_creator_is_admin_and_others_are_members(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.get(f"/rooms/{room['room_id']}/members", headers=tenant.as_user("bob"))
    assert response.status_code == 200
    assert {m["user_id"]: m["role"] for m in response.json()} == {"alice": "admin", "bob": "member"}


@pytest.mark.parametrize("second_creator", ["alice", "bob"])
async def test_second_dm_of_a_pair_is_409_room_exists_with_the_first_room_id(
    client: httpx.AsyncClient, tenant: Tenant, second_creator: str
) -> None:
    first = await create_room(client, tenant, "alice", ["bob"], type_="dm")
    other = "bob" if second_creator == "alice" else "alice"
    response = await client.post(
        "/rooms", json={"type": "dm", "members": [other]}, headers=tenant.as_user(second_creator)
    )
    error = error_of(response, 409)
    assert error["code"] == "ROOM_EXISTS"
    assert error["room_id"] == first["room_id"]


async def test_rejected_second_dm_leaves_no_room_behind(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await create_room(client, tenant, "alice", ["bob"], type_="dm")
    await client.post("/rooms", json={"type": "dm", "members": ["alice"]}, headers=tenant.as_user("bob"))
    listed = (await client.get("/rooms", headers=tenant.as_user("bob"))).json()
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "forum", "members": ["bob"]}, "type"),
        ({"members": ["bob"]}, "type"),
        ({"type": "group", "members": ["bob"], "colour": "red"}, "colour"),
        ({"type": "group", "members": "bob"}, "members"),
        ({"type": "group", "members": [7]}, "members[0]"),
        ({"type": "group", "members": ["has space"]}, "members[0]"),
        ({"type": "group", "name": 12}, "name"),
        ({"type": "group", "metadata": ["not", "an", "object"]}, "metadata"),
    ],
    ids=["bad-type", "missing-type", "unknown-field", "members-not-a-list", "member-not-a-string",
         "malformed-member-id", "name-not-a-string", "metadata-not-an-object"],
)
async def test_create_room_with_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/rooms", json=body, headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["field"] == field


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_room_metadata_nested_too_deep_is_400_on_metadata(
    client: httpx.AsyncClient, tenant: Tenant, method: str
) -> None:
    deep = '{"a":' * 1_000 + "1" + "}" * 1_000
    path, body = "/rooms", '{"type":"group","metadata":' + deep + "}"
    if method == "PATCH":
        room = await create_room(client, tenant, "alice", [])
        path, body = f"/rooms/{room['room_id']}", '{"metadata":' + deep + "}"
    response = await client.request(method, path, content=body.encode(),
                                    headers={**tenant.as_user("alice"), "Content-Type": "application/json"})
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "metadata")


async def test_a_non_ascii_member_is_removed_by_its_url_encoded_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["בוב"])
    response = await client.delete(f"/rooms/{room['room_id']}/members/%D7%91%D7%95%D7%91",
                                   headers=tenant.as_user("alice"))
    assert response.status_code == 200, response.text
    members = (await client.get(f"/rooms/{room['room_id']}/members", headers=tenant.as_user("alice"))).json()
    assert [m["user_id"] for m in members] == ["alice"]


async def test_create_room_with_malformed_json_is_400_validation_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/rooms", content=b'{"type": "group",', headers={**tenant.as_user("alice"), "Content-Type": "application/json"}
    )
    assert error_of(response, 400)["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "members", [[], ["alice"], ["bob", "carol"], ["bob", "bob", "bob"]],
    ids=["nobody", "only-self", "two-others", "three-entries"],
)
async def test_dm_without_exactly_one_other_member_is_400_on_members(
    client: httpx.AsyncClient, tenant: Tenant, members: list[str]
) -> None:
    response = await client.post("/rooms", json={"type": "dm", "members": members}, headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "members")


# --- read and list ------------------------------------------------------------------------------


async def test_get_room_returns_it_with_current_last_seq(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], name="Ops")
    sent = await client.post(
        f"/rooms/{room['room_id']}/messages", json={"content": "hi"}, headers=tenant.as_user("bob")
    )
    assert sent.status_code == 201
    fetched = await get_room(client, tenant, "bob", room["room_id"])
    last = {"message_id": sent.json()["message_id"], "seq": sent.json()["seq"], "sender_id": "bob", "preview": "hi",
            "deleted": False}
    assert fetched == {**room, "last_seq": room["last_seq"] + 1, "last_message": last,
                       "last_message_at": sent.json()["created_at"]}


async def test_get_room_by_non_member_is_403_not_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.get(f"/rooms/{room['room_id']}", headers=tenant.as_user("mallory"))
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


async def test_list_rooms_shows_only_the_callers_rooms(client: httpx.AsyncClient, tenant: Tenant) -> None:
    shared = await create_room(client, tenant, "alice", ["bob"])
    await create_room(client, tenant, "alice", ["carol"])
    response = await client.get("/rooms", headers=tenant.as_user("bob"))
    assert response.status_code == 200
    assert [r["room_id"] for r in response.json()] == [shared["room_id"]]


async def test_list_rooms_carries_each_rooms_last_seq(client: httpx.AsyncClient, tenant: Tenant) -> None:
    quiet = await create_room(client, tenant, "alice", ["bob"])
    busy = await create_room(client, tenant, "alice", ["bob", "carol"])
    for text in ("one", "two"):
        sent = await client.post(f"/rooms/{busy['room_id']}/messages", json={"content": text},
                                 headers=tenant.as_user("alice"))
        assert sent.status_code == 201
    listed = {r["room_id"]: r["last_seq"] for r in (await client.get("/rooms", headers=tenant.as_user("bob"))).json()}
    assert listed == {quiet["room_id"]: 3, busy["room_id"]: 6}


async def test_list_rooms_drops_a_room_the_caller_was_removed_from(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    removed = await client.delete(f"/rooms/{room['room_id']}/members/bob", headers=tenant.as_user("alice"))
    assert removed.status_code == 200
    assert (await client.get("/rooms", headers=tenant.as_user("bob"))).json() == []


async def test_list_rooms_pages_with_limit_and_offset(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = [(await create_room(client, tenant, "alice", []))["room_id"] for _ in range(3)]
    first = (await client.get("/rooms?limit=2", headers=tenant.as_user("alice"))).json()
    rest = (await client.get("/rooms?limit=2&offset=2", headers=tenant.as_user("alice"))).json()
    assert [r["room_id"] for r in first + rest] == ids[::-1]  # newest activity first


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset")],
)
async def test_list_rooms_with_bad_paging_is_400_naming_the_parameter(
    client: httpx.AsyncClient, tenant: Tenant, query: str, field: str
) -> None:
    response = await client.get(f"/rooms?{query}", headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)


# --- rename and metadata ------------------------------------------------------------------------


async def test_admin_renames_a_room_and_the_rename_takes_a_seq(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], name="Old")
    response = await client.patch(f"/rooms/{room['room_id']}", json={"name": "New"}, headers=tenant.as_user("alice"))
    assert response.status_code == 200
    assert response.json()["name"] == "New"
    assert response.json()["last_seq"] == room["last_seq"] + 1
    assert (await get_room(client, tenant, "bob", room["room_id"]))["name"] == "New"


async def test_patch_with_name_null_clears_the_name_and_keeps_metadata(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", [], name="Named", metadata={"k": 1})
    response = await client.patch(f"/rooms/{room['room_id']}", json={"name": None}, headers=tenant.as_user("alice"))
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["metadata"]) == (None, {"k": 1})


async def test_patch_sets_metadata_and_keeps_the_name(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [], name="Named")
    response = await client.patch(
        f"/rooms/{room['room_id']}", json={"metadata": {"topic": "release", "n": [1, 2]}},
        headers=tenant.as_user("alice"),
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["metadata"]) == ("Named", {"topic": "release", "n": [1, 2]})


async def test_patch_with_nothing_to_change_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.patch(f"/rooms/{room['room_id']}", json={}, headers=tenant.as_user("alice"))
    assert error_of(response, 400)["code"] == "VALIDATION_ERROR"
    assert (await get_room(client, tenant, "alice", room["room_id"]))["last_seq"] == room["last_seq"]


async def test_patch_with_unknown_field_is_400_naming_it(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.patch(f"/rooms/{room['room_id']}", json={"title": "x"}, headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "title")


async def test_patch_by_plain_member_is_403_not_room_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], name="Keep")
    response = await client.patch(f"/rooms/{room['room_id']}", json={"name": "Mine"}, headers=tenant.as_user("bob"))
    assert error_of(response, 403)["code"] == "NOT_ROOM_ADMIN"
    assert (await get_room(client, tenant, "alice", room["room_id"]))["name"] == "Keep"


async def test_patch_by_non_member_is_403_not_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.patch(f"/rooms/{room['room_id']}", json={"name": "x"}, headers=tenant.as_user("mallory"))
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


# --- members ------------------------------------------------------------------------------------


async def test_admin_adds_members_and_gets_the_full_member_list(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["carol", "dave"]}, headers=tenant.as_user("alice")
    )
    assert response.status_code == 200
    assert sorted(m["user_id"] for m in response.json()) == ["alice", "bob", "carol", "dave"]
    assert (await get_room(client, tenant, "carol", room["room_id"]))["last_seq"] == room["last_seq"] + 2


async def test_adding_existing_members_appends_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["bob", "alice"]}, headers=tenant.as_user("alice")
    )
    assert response.status_code == 200
    assert sorted(m["user_id"] for m in response.json()) == ["alice", "bob"]
    assert (await get_room(client, tenant, "alice", room["room_id"]))["last_seq"] == room["last_seq"]


async def test_add_members_by_plain_member_is_403_not_room_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["carol"]}, headers=tenant.as_user("bob")
    )
    assert error_of(response, 403)["code"] == "NOT_ROOM_ADMIN"
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice", "bob"]


async def test_add_members_by_non_member_is_403_not_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["mallory"]}, headers=tenant.as_user("mallory")
    )
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


async def test_members_of_a_dm_are_fixed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"], type_="dm")
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["carol"]}, headers=tenant.as_user("alice")
    )
    assert error_of(response, 403)["code"] == "FORBIDDEN"
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"user_ids": []}, "user_ids"), ({}, "user_ids"), ({"user_ids": ["a/b"]}, "user_ids[0]")],
    ids=["empty-list", "missing", "malformed-id"],
)
async def test_add_members_with_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.post(f"/rooms/{room['room_id']}/members", json=body, headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)


async def test_admin_removes_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"])
    response = await client.delete(f"/rooms/{room['room_id']}/members/carol", headers=tenant.as_user("alice"))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice", "bob"]


async def test_member_may_remove_themselves(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.delete(f"/rooms/{room['room_id']}/members/bob", headers=tenant.as_user("bob"))
    assert response.status_code == 200
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice"]


async def test_plain_member_removing_someone_else_is_403_not_room_admin(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"])
    response = await client.delete(f"/rooms/{room['room_id']}/members/carol", headers=tenant.as_user("bob"))
    assert error_of(response, 403)["code"] == "NOT_ROOM_ADMIN"
    assert await member_ids(client, tenant, "alice", room["room_id"]) == ["alice", "bob", "carol"]


async def test_removing_a_user_who_is_not_a_member_is_404_on_user_id(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.delete(f"/rooms/{room['room_id']}/members/nobody", headers=tenant.as_user("alice"))
    error = error_of(response, 404)
    assert (error["code"], error["field"]) == ("NOT_FOUND", "user_id")


async def test_removed_member_can_be_added_again(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    await client.delete(f"/rooms/{room['room_id']}/members/bob", headers=tenant.as_user("bob"))
    response = await client.post(
        f"/rooms/{room['room_id']}/members", json={"user_ids": ["bob"]}, headers=tenant.as_user("alice")
    )
    assert response.status_code == 200
    assert (await get_room(client, tenant, "bob", room["room_id"]))["last_seq"] == room["last_seq"] + 2
