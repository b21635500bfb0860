"""The users directory, user management by tenant admins, and blocks — over HTTP against real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher

from projections.streams import user_stream
from service.domain.roles import may_grant
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant, error_of

ROLES = ("member", "agent", "admin", "platform")


async def add_user(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """Create a user as the tenant's admin (fails the test unless 201)."""
    fields.setdefault("display_name", fields.get("user_id", "someone"))
    response = await client.post("/users", json=fields, headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def unique_email(name: str) -> str:
    """An email no other test uses (emails are unique across tenants)."""
    return f"{name}.{new_id('m')}@example.org"


async def users_of(
    client: httpx.AsyncClient, tenant: Tenant, caller: str, path: str = "/users"
) -> list[dict[str, Any]]:
    """The users listed at `path` as `caller` sees them (fails the test unless 200)."""
    response = await client.get(path, headers=tenant.as_user(caller))
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()
    return users


async def blocked_ids(client: httpx.AsyncClient, tenant: Tenant, user: str) -> list[str]:
    """The ids `user` has blocked, in the order GET /blocks gives them."""
    response = await client.get("/blocks", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    return [b["user_id"] for b in response.json()]


async def block_events(pool: asyncpg.Pool, tenant: Tenant, user: str) -> list[str]:
    """The types of the events in `user`'s own stream, in seq order."""
    rows = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                            user_stream(tenant.tenant_id, user))
    return [r["type"] for r in rows]


# --- GET /users ---------------------------------------------------------------------------------


async def test_list_users_returns_the_tenants_users_with_their_roles(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="bob", display_name="Bob", role="agent")
    listed = await users_of(client, tenant, "alice")
    assert [(u["user_id"], u["display_name"], u["role"]) for u in listed] == [
        ("admin", "admin", "admin"), ("bob", "Bob", "agent"),
    ]


async def test_list_users_hides_other_users_email_and_phone_from_members(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="bob", email=unique_email("bob"), phone="+1 555 0100")
    bob = next(u for u in await users_of(client, tenant, "alice") if u["user_id"] == "bob")
    assert (bob["email"], bob["phone"]) == (None, None)


async def test_list_users_shows_email_and_phone_to_tenant_admins(client: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email("bob")
    await add_user(client, tenant, user_id="bob", email=email, phone="+1 555 0100")
    bob = next(u for u in await users_of(client, tenant, "admin") if u["user_id"] == "bob")
    assert (bob["email"], bob["phone"]) == (email, "+1 555 0100")


async def test_list_users_shows_a_member_their_own_email(client: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email("alice")
    await add_user(client, tenant, user_id="alice", email=email)
    alice = next(u for u in await users_of(client, tenant, "alice") if u["user_id"] == "alice")
    assert alice["email"] == email


async def test_list_users_pages_with_limit_and_offset(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for name in ("u1", "u2", "u3"):
        await add_user(client, tenant, user_id=name)
    page = await users_of(client, tenant, "alice", "/users?limit=2&offset=1")
    assert [u["user_id"] for u in page] == ["u1", "u2"]


async def test_list_users_rejects_a_limit_above_100(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/users?limit=101", headers=tenant.as_user("alice"))
    assert error_of(response, 400)["field"] == "limit"


async def test_list_users_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/users")
    assert error_of(response, 401)["code"] == "AUTHENTICATION_ERROR"


# --- GET /users/search --------------------------------------------------------------------------


async def test_search_finds_users_by_case_insensitive_name_substring(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="u-ann", display_name="Annabel Lee")
    await add_user(client, tenant, user_id="u-bob", display_name="Bob Dylan")
    found = await users_of(client, tenant, "alice", "/users/search?q=BEL%20l")
    assert [u["user_id"] for u in found] == ["u-ann"]


async def test_search_finds_users_by_user_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="zed-42", display_name="Zed")
    found = await users_of(client, tenant, "alice", "/users/search?q=ed-4")
    assert [u["user_id"] for u in found] == ["zed-42"]


async def test_search_puts_prefix_matches_before_other_matches(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="u1", display_name="Maria Ann")
    await add_user(client, tenant, user_id="u2", display_name="Anna Maria")
    found = await users_of(client, tenant, "alice", "/users/search?q=ann")
    assert [u["user_id"] for u in found] == ["u2", "u1"]


async def test_search_treats_like_wildcards_literally(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="plain", display_name="Plain")
    await add_user(client, tenant, user_id="pct", display_name="100% sure")
    found = await users_of(client, tenant, "alice", "/users/search?q=%25")
    assert [u["user_id"] for u in found] == ["pct"]


async def test_search_by_email_fragment_finds_users_for_admins(client: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email("carol")
    await add_user(client, tenant, user_id="carol", email=email)
    found = await users_of(client, tenant, "admin", f"/users/search?q={email.split('@')[0][3:].upper()}")
    assert [(u["user_id"], u["email"]) for u in found] == [("carol", email)]


async def test_search_by_email_fragment_finds_nobody_for_members(client: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email("carol")
    await add_user(client, tenant, user_id="u-c", display_name="C", email=email)
    assert await users_of(client, tenant, "alice", f"/users/search?q={email.split('@')[0][3:]}") == []


async def test_search_by_complete_email_finds_the_user_for_members_without_showing_it(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    email = unique_email("carol")
    await add_user(client, tenant, user_id="u-c", display_name="C", email=email)
    response = await client.get("/users/search", params={"q": email.upper()}, headers=tenant.as_user("alice"))
    assert [(u["user_id"], u["email"]) for u in response.json()] == [("u-c", None)]


async def test_search_by_phone_compares_digits_ignoring_formatting(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="dan", phone="+1 (555) 010-0200")
    response = await client.get("/users/search", params={"q": "+15550100200"}, headers=tenant.as_user("alice"))
    assert [u["user_id"] for u in response.json()] == ["dan"]


async def test_search_by_phone_fragment_finds_users_for_admins(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="dan", phone="+1 (555) 010-0200")
    found = await users_of(client, tenant, "admin", "/users/search?q=5550")
    assert [u["user_id"] for u in found] == ["dan"]


async def test_search_without_q_is_400_naming_q(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/users/search", headers=tenant.as_user("alice"))
    assert error_of(response, 400)["field"] == "q"


async def test_search_with_q_over_100_characters_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/users/search", params={"q": "x" * 101}, headers=tenant.as_user("alice"))
    assert error_of(response, 400)["field"] == "q"


async def test_search_respects_limit(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for n in range(3):
        await add_user(client, tenant, user_id=f"same{n}", display_name="Same")
    assert len(await users_of(client, tenant, "alice", "/users/search?q=same&limit=2")) == 2


# --- POST /users --------------------------------------------------------------------------------


async def test_create_user_returns_201_with_the_user(client: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email("erin")
    user = await add_user(client, tenant, user_id="erin", display_name="Erin", email=email, role="agent")
    assert {k: user[k] for k in ("user_id", "display_name", "email", "role", "avatar_url")} == {
        "user_id": "erin", "display_name": "Erin", "email": email, "role": "agent", "avatar_url": None,
    }


async def test_create_user_without_user_id_generates_one(client: httpx.AsyncClient, tenant: Tenant) -> None:
    user = await add_user(client, tenant, display_name="Nameless")
    assert user["user_id"].startswith("usr_")


async def test_create_user_defaults_to_the_member_role(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await add_user(client, tenant, user_id="fay"))["role"] == "member"


async def test_create_user_as_a_member_is_403_not_tenant_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/users", json={"display_name": "X"}, headers=tenant.as_user("alice"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


async def test_create_user_as_an_agent_is_403(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="gus", role="agent")
    response = await client.post("/users", json={"display_name": "X"}, headers=tenant.as_user("gus"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


async def test_create_user_with_a_taken_user_id_is_409_user_exists(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/users", json={"user_id": "admin", "display_name": "Again"},
                                 headers=tenant.as_user("admin"))
    assert error_of(response, 409)["code"] == "USER_EXISTS"


async def test_create_user_with_a_taken_email_in_other_case_is_409_email_taken(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    email = unique_email("hal")
    await add_user(client, tenant, user_id="hal", email=email)
    response = await client.post("/users", json={"user_id": "hal2", "display_name": "H", "email": email.upper()},
                                 headers=tenant.as_user("admin"))
    assert error_of(response, 409) == {"code": "EMAIL_TAKEN", "message": "this email is already registered",
                                       "field": "email"}


@pytest.mark.parametrize(("body", "field"), [
    ({"display_name": ""}, "display_name"),
    ({"display_name": "X", "role": "owner"}, "role"),
    ({"display_name": "X", "email": "not-an-email"}, "email"),
    ({"display_name": "X", "password": "short"}, "password"),
    ({"display_name": "X", "user_id": "has space"}, "user_id"),
    ({"display_name": "X", "nickname": "x"}, "nickname"),
])
async def test_create_user_with_an_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/users", json=body, headers=tenant.as_user("admin"))
    assert error_of(response, 400)["field"] == field


async def test_create_user_stores_an_argon2id_hash_of_the_password(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    await add_user(client, tenant, user_id="ivy", password="correct horse battery")
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE tenant_id = $1 AND user_id = 'ivy'",
                                 tenant.tenant_id)
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, "correct horse battery")


async def test_create_user_without_a_password_stores_no_hash(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    await add_user(client, tenant, user_id="jay")
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE tenant_id = $1 AND user_id = 'jay'",
                                 tenant.tenant_id)
    assert stored is None


async def test_creating_an_admin_applies_their_role_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # kim acted before being registered, so this instance has cached her as a member.
    assert (await client.get("/api-keys", headers=tenant.as_user("kim"))).status_code == 403
    await add_user(client, tenant, user_id="kim", role="admin")
    assert (await client.get("/api-keys", headers=tenant.as_user("kim"))).status_code == 200


# --- PATCH /users/{user_id} ---------------------------------------------------------------------


async def test_patch_user_changes_the_display_name(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await add_user(client, tenant, user_id="lou", display_name="Lou")
    response = await client.patch("/users/lou", json={"display_name": "Louise"}, headers=tenant.as_user("admin"))
    assert response.status_code == 200, response.text
    assert (response.json()["display_name"], response.json()["role"]) == ("Louise", "member")


async def test_patch_user_demotion_applies_to_api_key_callers_at_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="max", role="admin")
    assert (await client.get("/api-keys", headers=tenant.as_user("max"))).status_code == 200
    response = await client.patch("/users/max", json={"role": "member"}, headers=tenant.as_user("admin"))
    assert response.json()["role"] == "member"
    assert error_of(await client.get("/api-keys", headers=tenant.as_user("max")), 403)["code"] == "NOT_TENANT_ADMIN"


async def test_patch_user_demotion_applies_to_signed_in_sessions_at_once(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    await add_user(client, tenant, user_id="ned", role="admin")
    session_id = new_id("ses")
    await runtime.pool.execute("INSERT INTO sessions (family_id, tenant_id, user_id) VALUES ($1, $2, 'ned')",
                               session_id, tenant.tenant_id)
    token, _ = runtime.auth.signer.issue(tenant_id=tenant.tenant_id, user_id="ned", role="admin",
                                         session_id=session_id, token_type="access", ttl_seconds=300)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api-keys", headers=bearer)).status_code == 200
    await client.patch("/users/ned", json={"role": "agent"}, headers=tenant.as_user("admin"))
    assert error_of(await client.get("/api-keys", headers=bearer), 403)["code"] == "NOT_TENANT_ADMIN"


async def test_patch_user_with_an_empty_body_returns_the_user_unchanged(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await add_user(client, tenant, user_id="oz", display_name="Oz")
    response = await client.patch("/users/oz", json={}, headers=tenant.as_user("admin"))
    assert response.json() == created


async def test_patch_unknown_user_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.patch("/users/nobody", json={"role": "agent"}, headers=tenant.as_user("admin"))
    assert error_of(response, 404)["code"] == "USER_NOT_FOUND"


async def test_patch_user_as_a_member_is_403(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.patch("/users/admin", json={"role": "member"}, headers=tenant.as_user("alice"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


async def test_patch_demoting_the_last_admin_is_409_last_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.patch("/users/admin", json={"role": "member"}, headers=tenant.as_user("admin"))
    assert error_of(response, 409)["code"] == "LAST_ADMIN"


async def test_patch_demoting_an_admin_is_allowed_while_another_admin_remains(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="pia", role="admin")
    response = await client.patch("/users/admin", json={"role": "agent"}, headers=tenant.as_user("admin"))
    assert response.json()["role"] == "agent"


async def test_concurrent_demotions_of_the_last_two_admins_leave_one_admin(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    await add_user(client, tenant, user_id="quin", role="admin")
    # Each admin demotes the other at the same moment: one wins, the other is refused (409, or 403 when
    # it authenticated after its own demotion); the tenant never ends up without an admin.
    responses = await asyncio.gather(
        client.patch("/users/quin", json={"role": "member"}, headers=tenant.as_user("admin")),
        client.patch("/users/admin", json={"role": "member"}, headers=tenant.as_user("quin")),
    )
    assert sorted(r.status_code for r in responses) in ([200, 409], [200, 403])
    admins = await pool.fetchval("SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'admin'",
                                 tenant.tenant_id)
    assert admins == 1


@pytest.mark.parametrize(("granter", "role"), list(itertools.product(ROLES, ROLES[:3])))
def test_may_grant_allows_exactly_the_roles_up_to_ones_own(granter: str, role: str) -> None:
    assert may_grant(granter, role) is (ROLES.index(role) <= ROLES.index(granter))


# --- blocks -------------------------------------------------------------------------------------


async def test_block_returns_success_and_lists_the_block(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert await blocked_ids(client, tenant, "alice") == ["bob"]


async def test_block_is_an_event_in_the_blockers_own_stream(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    assert await block_events(pool, tenant, "alice") == ["user.blocked"]


async def test_blocking_twice_appends_one_event(client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    for _ in range(2):
        assert (await client.post("/users/bob/block", headers=tenant.as_user("alice"))).status_code == 200
    assert await block_events(pool, tenant, "alice") == ["user.blocked"]


async def test_concurrent_blocks_of_the_same_user_append_one_event(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    responses = await asyncio.gather(
        *(client.post("/users/bob/block", headers=tenant.as_user("alice")) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [200] * 5
    assert await block_events(pool, tenant, "alice") == ["user.blocked"]


async def test_blocking_yourself_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/users/alice/block", headers=tenant.as_user("alice"))
    assert error_of(response, 400)["code"] == "CANNOT_BLOCK_SELF"


async def test_blocking_a_malformed_user_id_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/users/bad%20id/block", headers=tenant.as_user("alice"))
    assert error_of(response, 400)["field"] == "user_id"


async def test_block_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    assert error_of(await client.post("/users/bob/block"), 401)["code"] == "AUTHENTICATION_ERROR"


async def test_unblock_removes_the_block(client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    response = await client.delete("/users/bob/block", headers=tenant.as_user("alice"))
    assert response.json() == {"success": True}
    assert await blocked_ids(client, tenant, "alice") == []
    assert await block_events(pool, tenant, "alice") == ["user.blocked", "user.unblocked"]


async def test_unblock_without_a_block_is_200_and_appends_nothing(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    response = await client.delete("/users/bob/block", headers=tenant.as_user("alice"))
    assert response.status_code == 200, response.text
    assert await block_events(pool, tenant, "alice") == []


async def test_blocks_list_the_most_recent_first_with_since(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for target in ("bob", "carol"):
        await client.post(f"/users/{target}/block", headers=tenant.as_user("alice"))
    response = await client.get("/blocks", headers=tenant.as_user("alice"))
    blocks = response.json()
    assert [b["user_id"] for b in blocks] == ["carol", "bob"]
    assert blocks[1]["since"] <= blocks[0]["since"]


async def test_blocks_are_listed_only_to_the_blocker(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    assert await blocked_ids(client, tenant, "bob") == []


async def test_a_blocked_user_cannot_open_a_dm_with_the_blocker(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    response = await client.post("/rooms", json={"type": "dm", "members": ["alice"]}, headers=tenant.as_user("bob"))
    assert error_of(response, 403)["code"] == "BLOCKED"


async def test_a_blocked_user_cannot_add_the_blocker_to_a_room(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = (await client.post("/rooms", json={"type": "group", "members": ["carol"]},
                              headers=tenant.as_user("bob"))).json()
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    response = await client.post(f"/rooms/{room['room_id']}/members", json={"user_ids": ["alice"]},
                                 headers=tenant.as_user("bob"))
    assert error_of(response, 403)["code"] == "BLOCKED"


async def test_after_unblocking_the_user_can_open_a_dm_again(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    await client.delete("/users/bob/block", headers=tenant.as_user("alice"))
    response = await client.post("/rooms", json={"type": "dm", "members": ["alice"]}, headers=tenant.as_user("bob"))
    assert response.status_code == 201, response.text


# --- text PostgreSQL cannot store ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body", "status"), [
    ("PATCH", "/users/a%00b", {"display_name": "x"}, 404),
    ("POST", "/users/a%00b/block", None, 400),
    ("DELETE", "/users/a%00b/block", None, 400),
    ("GET", "/users/search?q=a%00b", None, 400),
    ("POST", "/users", {"display_name": "a\u0000b"}, 400),
    ("POST", "/users", {"display_name": "ab", "user_id": "a\u0000b"}, 400),
    ("POST", "/users", {"display_name": "ab", "email": "a\u0000b@example.org"}, 400),
])
async def test_a_nul_character_is_refused_before_it_reaches_the_database(
    client: httpx.AsyncClient, tenant: Tenant, method: str, url: str, body: dict[str, Any] | None, status: int
) -> None:
    response = await client.request(method, url, json=body, headers=tenant.as_user("admin"))
    assert response.status_code == status, response.text


# --- tenant isolation ---------------------------------------------------------------------------


async def test_another_tenant_never_lists_this_tenants_users(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="secret-sam", display_name="Sam Secret")
    listed = await users_of(client, other_tenant, "admin")
    assert [u["user_id"] for u in listed] == ["admin"]


async def test_another_tenant_never_finds_this_tenants_users(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    email = unique_email("sam")
    await add_user(client, tenant, user_id="secret-sam", display_name="Sam Secret", email=email)
    for q in ("secret", email):
        response = await client.get("/users/search", params={"q": q}, headers=other_tenant.as_user("admin"))
        assert response.json() == []


async def test_another_tenants_admin_cannot_patch_this_tenants_user(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="secret-sam", role="agent")
    response = await client.patch("/users/secret-sam", json={"role": "admin"}, headers=other_tenant.as_user("admin"))
    assert error_of(response, 404)["code"] == "USER_NOT_FOUND"
    kept = await users_of(client, tenant, "admin")
    assert next(u["role"] for u in kept if u["user_id"] == "secret-sam") == "agent"


async def test_the_same_user_id_in_another_tenant_is_a_different_user(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_user(client, tenant, user_id="twin", display_name="Twin A")
    twin_b = await add_user(client, other_tenant, user_id="twin", display_name="Twin B")
    assert twin_b["display_name"] == "Twin B"


async def test_a_block_in_one_tenant_has_no_effect_in_another(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await client.post("/users/bob/block", headers=tenant.as_user("alice"))
    assert await blocked_ids(client, other_tenant, "alice") == []
    response = await client.post("/rooms", json={"type": "dm", "members": ["alice"]},
                                 headers=other_tenant.as_user("bob"))
    assert response.status_code == 201, response.text
