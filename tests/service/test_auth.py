"""End-user accounts over HTTP: signup, login (and its throttle), refresh rotation, logout, me, profile, password.

Revocations take effect on this instance at once because service.identity.accounts drops the revoked session from
the authenticator's cache (`auth.sessions.forget`); the tests rely on that instead of waiting out the TTL.
Each test's client has an address of its own, so per-address login throttling never leaks between tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette

from schemas.accounts import Login, Signup
from schemas.config import Settings
from schemas.errors import AuthenticationError, RateLimited
from service.identity.accounts import Accounts, Throttle, throttle_keys
from service.identity.passwords import Passwords
from service.runtime import Runtime
from tests.conftest import Tenant, error_of

PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test uses."""
    n = next(_addresses)
    return f"10.{uuid.uuid4().int % 250}.{n // 250 % 250}.{n % 250 + 1}"


def client_at(app: Starlette, address: str) -> httpx.AsyncClient:
    """An in-process HTTP client whose connection comes from `address`."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://roomlog.test")


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a fresh client address (login throttling counts per address)."""
    async with client_at(app, new_address()) as c:
        yield c


def new_email() -> str:
    """An email address no account has."""
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    """Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


async def signup(client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD,
                 **extra: Any) -> dict[str, Any]:
    """Sign up a new account; the response body."""
    body = {"email": email or new_email(), "password": password, "display_name": "Ada"} | extra
    response = await client.post("/auth/signup", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """POST /auth/login."""
    return await client.post("/auth/login", json={"email": email, "password": password})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    """GET /auth/me with a bearer token."""
    return await client.get("/auth/me", headers=bearer(access_token))


# signup


async def test_signup_creates_a_tenant_owned_by_the_new_admin_account(web: httpx.AsyncClient,
                                                                      pool: asyncpg.Pool) -> None:
    email = new_email()
    created = await signup(web, email, tenant_name="Acme")
    assert created["user"]["user_id"].startswith("usr_")
    assert created["user"]["role"] == "admin"
    assert created["user"]["email"] == email
    assert created["tenant"]["name"] == "Acme"
    row = await pool.fetchrow("SELECT t.name, u.role FROM users u JOIN tenants t USING (tenant_id)"
                              " WHERE u.user_id = $1", created["user"]["user_id"])
    assert (row["name"], row["role"]) == ("Acme", "admin")


async def test_signup_logs_the_new_account_in(web: httpx.AsyncClient, settings: Settings) -> None:
    created = await signup(web)
    assert created["token_type"] == "Bearer"
    assert created["expires_in"] == settings.access_token_seconds
    response = await me(web, created["access_token"])
    assert response.status_code == 200
    assert response.json()["user"]["user_id"] == created["user"]["user_id"]
    assert response.json()["tenant"] == created["tenant"]


async def test_signup_with_an_email_taken_in_another_case_is_409_email_taken(web: httpx.AsyncClient) -> None:
    email = new_email()
    await signup(web, email)
    again = await web.post("/auth/signup", json={"email": email.upper(), "password": PASSWORD, "display_name": "B"})
    assert again.status_code == 409
    assert error_of(again)["code"] == "EMAIL_TAKEN"


async def test_signup_with_a_taken_email_creates_no_tenant(web: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    email = new_email()
    await signup(web, email)
    name = f"dup-{uuid.uuid4().hex}"
    await web.post("/auth/signup", json={"email": email, "password": PASSWORD, "display_name": "B",
                                         "tenant_name": name})
    assert await pool.fetchval("SELECT count(*) FROM tenants WHERE name = $1", name) == 0


async def test_signup_with_a_password_under_8_characters_is_400_on_password(web: httpx.AsyncClient) -> None:
    response = await web.post("/auth/signup", json={"email": new_email(), "password": "1234567",
                                                    "display_name": "Ada"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert error_of(response)["field"] == "password"


@pytest.mark.parametrize("email", ["no-at-sign.example.com", "two@@example.com", "spa ce@example.com",
                                   "nodot@example", "@example.com"])
async def test_signup_with_a_malformed_email_is_400_on_email(web: httpx.AsyncClient, email: str) -> None:
    response = await web.post("/auth/signup", json={"email": email, "password": PASSWORD, "display_name": "Ada"})
    assert response.status_code == 400
    assert error_of(response)["field"] == "email"


async def test_signup_stores_an_argon2id_hash_and_never_the_password(web: httpx.AsyncClient,
                                                                     pool: asyncpg.Pool) -> None:
    created = await signup(web)
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE user_id = $1", created["user"]["user_id"])
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


# login


async def test_login_returns_bearer_tokens_and_the_user(web: httpx.AsyncClient, settings: Settings) -> None:
    email = new_email()
    created = await signup(web, email)
    response = await login(web, email)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_seconds
    assert body["user"]["user_id"] == created["user"]["user_id"]
    assert body["refresh_token"] != created["refresh_token"]
    assert (await me(web, body["access_token"])).status_code == 200


async def test_login_matches_the_email_case_insensitively(web: httpx.AsyncClient) -> None:
    email = new_email()
    await signup(web, email)
    assert (await login(web, email.upper())).status_code == 200


async def test_login_opens_a_session_row_per_login(web: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    email = new_email()
    created = await signup(web, email)
    await login(web, email)
    count = await pool.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
                                created["user"]["user_id"])
    assert count == 2


async def test_wrong_password_and_unknown_email_get_the_same_401(web: httpx.AsyncClient) -> None:
    email = new_email()
    await signup(web, email)
    wrong_password = await login(web, email, "not the password")
    unknown_email = await login(web, new_email())
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert error_of(wrong_password) == error_of(unknown_email)
    assert error_of(wrong_password)["code"] == "AUTHENTICATION_ERROR"


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that counts its verifications."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


async def test_login_with_an_unknown_email_still_verifies_a_hash(runtime: Runtime, settings: Settings) -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    accounts = Accounts(runtime.pool, runtime.auth, settings, passwords=Passwords(hasher))
    with pytest.raises(AuthenticationError, match="wrong email or password"):
        await accounts.login(Login(email=new_email(), password=PASSWORD), client_address=new_address())
    assert hasher.verified == 1


async def test_login_upgrades_a_hash_made_with_old_parameters(web: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    email = new_email()
    created = await signup(web, email)
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    await pool.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", created["user"]["user_id"], old)
    assert (await login(web, email)).status_code == 200
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE user_id = $1", created["user"]["user_id"])
    assert stored != old
    assert not Passwords().needs_rehash(stored)


async def test_account_without_a_password_cannot_log_in(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                                        tenant: Tenant) -> None:
    email = new_email()
    await pool.execute("INSERT INTO users (tenant_id, user_id, email, display_name) VALUES ($1, 'nopw', $2, 'N')",
                       tenant.tenant_id, email)
    response = await login(web, email, "")
    assert response.status_code == 401


# login throttling


async def fail_logins(client: httpx.AsyncClient, email: str, times: int) -> None:
    """`times` failed logins for `email`, each answered 401."""
    for _ in range(times):
        assert (await login(client, email, "wrong password")).status_code == 401


async def test_login_is_throttled_per_address_and_account_even_with_the_right_password(
    web: httpx.AsyncClient, settings: Settings
) -> None:
    email = new_email()
    await signup(web, email)
    await fail_logins(web, email, settings.login_max_failures)
    response = await login(web, email)
    assert response.status_code == 429
    assert error_of(response)["code"] == "RATE_LIMIT_EXCEEDED"


async def test_failures_from_one_address_leave_the_account_open_elsewhere(app: Starlette, settings: Settings) -> None:
    email = new_email()
    async with client_at(app, new_address()) as attacker:
        await signup(attacker, email)
        await fail_logins(attacker, email, settings.login_max_failures)
    async with client_at(app, new_address()) as owner:
        assert (await login(owner, email)).status_code == 200


async def test_an_account_attacked_from_many_addresses_is_throttled_everywhere(app: Starlette,
                                                                               settings: Settings) -> None:
    email = new_email()
    async with client_at(app, new_address()) as first:
        await signup(first, email)
    for _ in range(settings.login_account_max_failures):
        async with client_at(app, new_address()) as attacker:
            await fail_logins(attacker, email, 1)
    async with client_at(app, new_address()) as owner:
        response = await login(owner, email)
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= settings.login_window_seconds


async def test_throttled_login_answer_carries_retry_after(web: httpx.AsyncClient, settings: Settings) -> None:
    email = new_email()
    await signup(web, email)
    await fail_logins(web, email, settings.login_max_failures)
    response = await login(web, email)
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= settings.login_window_seconds


async def test_failed_logins_to_other_accounts_do_not_block_a_correct_login_from_that_address(
    web: httpx.AsyncClient, settings: Settings
) -> None:
    email = new_email()
    await signup(web, email)
    for _ in range(settings.login_max_failures):
        await fail_logins(web, new_email(), 1)
    response = await login(web, email)
    assert response.status_code == 200, response.text


async def test_over_the_address_ceiling_an_address_gets_one_guess_per_account(runtime: Runtime,
                                                                              settings: Settings) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    strict = msgspec.structs.replace(settings, login_address_max_failures=3)
    accounts = Accounts(runtime.pool, runtime.auth, strict, passwords=Passwords(hasher))
    address, victim, bystander = new_address(), new_email(), new_email()
    for email in (victim, bystander):
        await accounts.signup(Signup(email=email, password=PASSWORD, display_name="Ada"))

    async def attempt(email: str, password: str = "wrong password") -> type[Exception] | None:
        try:
            await accounts.login(Login(email=email, password=password), client_address=address)
        except (AuthenticationError, RateLimited) as exc:
            return type(exc)
        return None

    for _ in range(3):  # the ceiling, spread over accounts: each is a plain wrong password
        assert await attempt(new_email()) is AuthenticationError
    assert await attempt(victim) is AuthenticationError  # over the ceiling: one guess at an account...
    assert await attempt(victim) is RateLimited  # ...and no second one
    assert await attempt(victim, PASSWORD) is RateLimited  # not even a right one: the address failed on it
    assert await attempt(bystander, PASSWORD) is None  # an account it never failed on still logs in
    assert await attempt(bystander) is AuthenticationError


async def test_login_throttle_ignores_x_forwarded_for(web: httpx.AsyncClient, settings: Settings) -> None:
    email = new_email()
    await fail_logins(web, email, settings.login_max_failures)
    response = await web.post("/auth/login", json={"email": email, "password": "x" * 8},
                              headers={"X-Forwarded-For": new_address()})
    assert response.status_code == 429


async def test_successful_login_clears_the_accounts_failures(app: Starlette, settings: Settings) -> None:
    email = new_email()
    async with client_at(app, new_address()) as first:
        await signup(first, email)
        await fail_logins(first, email, settings.login_max_failures - 1)
        assert (await login(first, email)).status_code == 200
    # Another address, so only the account's own count could block this login.
    async with client_at(app, new_address()) as second:
        await fail_logins(second, email, settings.login_max_failures - 1)
        assert (await login(second, email)).status_code == 200


async def test_failures_older_than_the_window_do_not_count(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                                           settings: Settings) -> None:
    email = new_email()
    await signup(web, email)
    await pool.executemany(
        "INSERT INTO login_failures (key, failed_at) VALUES ($1, now() - $2 * interval '1 second')",
        [(f"email:{email}", settings.login_window_seconds + 1)] * settings.login_account_max_failures,
    )
    assert (await login(web, email)).status_code == 200


async def test_throttle_reports_when_the_oldest_counted_failure_leaves_the_window(pool: asyncpg.Pool) -> None:
    throttle = Throttle(window_seconds=600)
    key = throttle_keys(new_email(), None).account
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO login_failures (key, failed_at) VALUES ($1, now() - $2 * interval '1 second')",
            [(key, 500), (key, 100)],
        )
        with pytest.raises(RateLimited) as raised:
            await throttle.check(conn, [(key, 2)])
    # Two failures, limit two: the older one (500 s ago) leaves the 600 s window in 100 s.
    assert 95 <= raised.value.extra["retry_after"] <= 101


def test_ipv6_addresses_of_one_64_count_as_one_client() -> None:
    def key(address: str) -> str:
        key = throttle_keys("a@example.com", address).address
        assert key is not None
        return key

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ff::9")
    assert key("2001:db8:1:2::1") != key("2001:db8:1:3::1")


def test_ipv4_mapped_ipv6_address_counts_as_the_ipv4_address() -> None:
    assert throttle_keys("a@example.com", "::ffff:192.0.2.7") == throttle_keys("A@example.com", "192.0.2.7")


# refresh


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """POST /auth/refresh."""
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_returns_a_new_working_token_pair(web: httpx.AsyncClient) -> None:
    created = await signup(web)
    response = await refresh(web, created["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != created["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert (await me(web, body["access_token"])).status_code == 200
    assert (await refresh(web, body["refresh_token"])).status_code == 200


async def test_refresh_spends_the_presented_token(web: httpx.AsyncClient) -> None:
    created = await signup(web)
    await refresh(web, created["refresh_token"])
    again = await refresh(web, created["refresh_token"])
    assert again.status_code == 401
    assert error_of(again)["code"] == "AUTHENTICATION_ERROR"


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(web: httpx.AsyncClient,
                                                                       pool: asyncpg.Pool) -> None:
    created = await signup(web)
    rotated = (await refresh(web, created["refresh_token"])).json()
    assert (await me(web, rotated["access_token"])).status_code == 200  # cached as live before the reuse
    assert (await refresh(web, created["refresh_token"])).status_code == 401
    assert (await refresh(web, rotated["refresh_token"])).status_code == 401
    assert (await me(web, rotated["access_token"])).status_code == 401
    assert (await me(web, created["access_token"])).status_code == 401
    reason = await pool.fetchval("SELECT revoked_reason FROM sessions WHERE user_id = $1",
                                 created["user"]["user_id"])
    assert reason == "refresh_token_reuse"


async def test_refresh_token_reuse_leaves_the_users_other_sessions_alone(web: httpx.AsyncClient) -> None:
    email = new_email()
    created = await signup(web, email)
    other = (await login(web, email)).json()
    await refresh(web, created["refresh_token"])
    await refresh(web, created["refresh_token"])
    assert (await me(web, other["access_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_only_one_through(web: httpx.AsyncClient,
                                                                         pool: asyncpg.Pool) -> None:
    created = await signup(web)
    answers = await asyncio.gather(*(refresh(web, created["refresh_token"]) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 401]
    # The loser presented a token the winner had spent: that is reuse, so the session is gone.
    reason = await pool.fetchval("SELECT revoked_reason FROM sessions WHERE user_id = $1",
                                 created["user"]["user_id"])
    assert reason == "refresh_token_reuse"


async def test_refresh_tokens_are_opaque_256_bit_strings_stored_as_sha256(web: httpx.AsyncClient,
                                                                         pool: asyncpg.Pool) -> None:
    created = await signup(web)
    token = created["refresh_token"]
    assert token.count(".") == 0  # not a JWT
    assert len(token.removeprefix("rlr_")) == 43  # 32 random bytes, base64url
    stored = await pool.fetch("SELECT token_hash FROM refresh_tokens WHERE user_id = $1", created["user"]["user_id"])
    assert [r["token_hash"] for r in stored] == [hashlib.sha256(token.encode()).digest()]


async def test_expired_refresh_token_is_401_without_revoking_the_session(web: httpx.AsyncClient,
                                                                         pool: asyncpg.Pool) -> None:
    created = await signup(web)
    digest = hashlib.sha256(created["refresh_token"].encode()).digest()
    await pool.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                       digest)
    assert (await refresh(web, created["refresh_token"])).status_code == 401
    assert (await me(web, created["access_token"])).status_code == 200


async def test_unknown_refresh_token_is_401(web: httpx.AsyncClient) -> None:
    response = await refresh(web, "rlr_" + "A" * 43)
    assert response.status_code == 401
    assert error_of(response)["code"] == "AUTHENTICATION_ERROR"


# logout


async def test_logout_ends_the_session_for_access_and_refresh_tokens(web: httpx.AsyncClient,
                                                                     pool: asyncpg.Pool) -> None:
    created = await signup(web)
    response = await web.post("/auth/logout", headers=bearer(created["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert (await me(web, created["access_token"])).status_code == 401
    assert (await refresh(web, created["refresh_token"])).status_code == 401
    reason = await pool.fetchval("SELECT revoked_reason FROM sessions WHERE user_id = $1",
                                 created["user"]["user_id"])
    assert reason == "logout"


async def test_logout_with_an_api_key_is_403_session_required(web: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await web.post("/auth/logout", headers=tenant.as_user("admin"))
    assert response.status_code == 403
    assert error_of(response)["code"] == "SESSION_REQUIRED"


async def test_logout_without_credentials_is_401(web: httpx.AsyncClient) -> None:
    assert (await web.post("/auth/logout")).status_code == 401


# me


async def test_me_returns_the_user_and_tenant_fields(web: httpx.AsyncClient) -> None:
    email = new_email()
    created = await signup(web, email, display_name="Grace", tenant_name="Navy")
    body = (await me(web, created["access_token"])).json()
    assert set(body["user"]) == {"user_id", "email", "display_name", "avatar_url", "timezone", "role", "created_at"}
    assert (body["user"]["email"], body["user"]["display_name"], body["user"]["role"]) == (email, "Grace", "admin")
    assert body["tenant"] == {"tenant_id": created["tenant"]["tenant_id"], "name": "Navy"}


async def test_me_with_an_api_key_describes_the_acting_user(web: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await web.get("/auth/me", headers=tenant.as_user("admin"))
    assert response.status_code == 200
    body = response.json()
    assert (body["user"]["user_id"], body["user"]["role"]) == ("admin", "admin")
    assert body["tenant"]["tenant_id"] == tenant.tenant_id


async def test_me_for_a_user_without_an_account_row_is_a_member_by_id(web: httpx.AsyncClient,
                                                                      tenant: Tenant) -> None:
    body = (await web.get("/auth/me", headers=tenant.as_user("walk-in"))).json()
    assert body["user"] == {"user_id": "walk-in", "email": None, "display_name": "walk-in", "avatar_url": None,
                            "timezone": None, "role": "member", "created_at": None}


# X-User-Id: the one user-id rule, the header sent as UTF-8


def acting_as(tenant: Tenant, user_id: bytes) -> dict[str, str | bytes]:
    """API-key headers with X-User-Id sent as exactly these bytes."""
    return {"X-API-Key": tenant.api_key, "X-User-Id": user_id}


async def test_a_non_ascii_member_id_acts_through_the_header_as_utf_8(web: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await web.post("/rooms", json={"type": "group", "members": ["בוב"]}, headers=tenant.as_user("alice"))
    assert created.status_code == 201, created.text
    room_id = created.json()["room_id"]
    bob = acting_as(tenant, "בוב".encode())

    sent = await web.post(f"/rooms/{room_id}/messages", json={"content": "שלום"}, headers=bob)
    listed = await web.get(f"/rooms/{room_id}/messages", headers=bob)
    body = (await web.get("/auth/me", headers=bob)).json()

    assert sent.status_code == 201, sent.text
    assert [m["sender_id"] for m in listed.json()] == ["בוב"]
    assert body["user"]["user_id"] == "בוב"


@pytest.mark.parametrize(
    "user_id",
    [b"\xff\xfe", b"\xd7", "a\u0085b".encode(), "a\u009fb".encode(), b"a\x7fb", b".", b".."],
    ids=["not-utf-8", "truncated-utf-8", "c1-next-line", "c1-control", "delete", "dot", "dot-dot"],
)
async def test_x_user_id_that_is_not_utf_8_or_not_a_user_id_is_401(
    web: httpx.AsyncClient, tenant: Tenant, user_id: bytes
) -> None:
    response = await web.get("/auth/me", headers=acting_as(tenant, user_id))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"


@pytest.mark.parametrize("user_id", ["a\u0085b", "a\u0080b", ".", "..", "bob\n"],
                         ids=["c1-next-line", "c1-control", "dot", "dot-dot", "final-newline"])
async def test_a_body_refuses_the_member_ids_the_header_refuses(
    web: httpx.AsyncClient, tenant: Tenant, user_id: str
) -> None:
    response = await web.post("/rooms", json={"type": "group", "members": [user_id]}, headers=tenant.as_user("alice"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "members[0]"


# profile


async def test_profile_update_changes_only_the_given_fields(web: httpx.AsyncClient) -> None:
    created = await signup(web, display_name="Ada")
    token = created["access_token"]
    response = await web.patch("/auth/profile", json={"timezone": "Europe/Paris"}, headers=bearer(token))
    assert response.status_code == 200
    assert (response.json()["display_name"], response.json()["timezone"]) == ("Ada", "Europe/Paris")
    response = await web.patch("/auth/profile", json={"display_name": "Ada L.",
                                                      "avatar_url": "https://cdn.example.com/a.png"},
                               headers=bearer(token))
    user = (await me(web, token)).json()["user"]
    assert (user["display_name"], user["avatar_url"], user["timezone"]) == (
        "Ada L.", "https://cdn.example.com/a.png", "Europe/Paris")


async def test_profile_null_clears_avatar_and_timezone(web: httpx.AsyncClient) -> None:
    token = (await signup(web))["access_token"]
    await web.patch("/auth/profile", json={"timezone": "Asia/Tokyo", "avatar_url": "http://x.example/a.png"},
                    headers=bearer(token))
    response = await web.patch("/auth/profile", json={"timezone": None, "avatar_url": None}, headers=bearer(token))
    assert (response.json()["timezone"], response.json()["avatar_url"]) == (None, None)


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "../../etc/passwd", "Europe/", "not a zone"])
async def test_profile_rejects_an_unknown_timezone(web: httpx.AsyncClient, timezone: str) -> None:
    token = (await signup(web))["access_token"]
    response = await web.patch("/auth/profile", json={"timezone": timezone}, headers=bearer(token))
    assert response.status_code == 400
    assert error_of(response)["field"] == "timezone"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/a.png", "/relative.png",
                                 "https://", "https://exa mple.com/a.png", "data:image/png;base64,AAAA",
                                 "https://example.com/\u0000.png", "https://[::1/a.png"])
async def test_profile_rejects_an_avatar_url_that_is_not_http(web: httpx.AsyncClient, url: str) -> None:
    token = (await signup(web))["access_token"]
    response = await web.patch("/auth/profile", json={"avatar_url": url}, headers=bearer(token))
    assert response.status_code == 400
    assert error_of(response)["field"] == "avatar_url"


async def test_profile_rejects_unknown_fields(web: httpx.AsyncClient) -> None:
    token = (await signup(web))["access_token"]
    response = await web.patch("/auth/profile", json={"role": "admin"}, headers=bearer(token))
    assert response.status_code == 400


async def test_profile_with_an_api_key_is_403_session_required(web: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await web.patch("/auth/profile", json={"display_name": "x"}, headers=tenant.as_user("admin"))
    assert response.status_code == 403
    assert error_of(response)["code"] == "SESSION_REQUIRED"


# change password


async def change_password(client: httpx.AsyncClient, token: str, current: str, new: str) -> httpx.Response:
    """POST /auth/change-password."""
    return await client.post("/auth/change-password", json={"current_password": current, "new_password": new},
                             headers=bearer(token))


async def test_change_password_replaces_the_password(web: httpx.AsyncClient) -> None:
    email = new_email()
    created = await signup(web, email)
    response = await change_password(web, created["access_token"], PASSWORD, "a brand new secret")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert (await login(web, email, "a brand new secret")).status_code == 200
    assert (await login(web, email, PASSWORD)).status_code == 401


async def test_change_password_revokes_the_other_sessions_but_not_this_one(web: httpx.AsyncClient) -> None:
    email = new_email()
    current = await signup(web, email)
    other = (await login(web, email)).json()
    assert (await me(web, other["access_token"])).status_code == 200  # cached as live before the change
    await change_password(web, current["access_token"], PASSWORD, "a brand new secret")
    assert (await me(web, current["access_token"])).status_code == 200
    assert (await refresh(web, current["refresh_token"])).status_code == 200
    assert (await me(web, other["access_token"])).status_code == 401
    assert (await refresh(web, other["refresh_token"])).status_code == 401


async def test_change_password_with_a_wrong_current_password_is_403(web: httpx.AsyncClient) -> None:
    email = new_email()
    created = await signup(web, email)
    response = await change_password(web, created["access_token"], "not the password", "a brand new secret")
    assert response.status_code == 403
    assert error_of(response)["code"] == "WRONG_PASSWORD"
    assert (await login(web, email, PASSWORD)).status_code == 200


async def test_change_password_guesses_are_throttled(web: httpx.AsyncClient, settings: Settings) -> None:
    token = (await signup(web))["access_token"]
    for _ in range(settings.login_max_failures):
        assert (await change_password(web, token, "guess guess", "a brand new secret")).status_code == 403
    response = await change_password(web, token, PASSWORD, "a brand new secret")
    assert response.status_code == 429


async def test_change_password_to_a_short_one_is_400_on_new_password(web: httpx.AsyncClient) -> None:
    token = (await signup(web))["access_token"]
    response = await change_password(web, token, PASSWORD, "short")
    assert response.status_code == 400
    assert error_of(response)["field"] == "new_password"


async def test_change_password_with_an_api_key_is_403_session_required(web: httpx.AsyncClient,
                                                                       tenant: Tenant) -> None:
    response = await web.post("/auth/change-password", json={"current_password": "x", "new_password": "y" * 8},
                              headers=tenant.as_user("admin"))
    assert response.status_code == 403
    assert error_of(response)["code"] == "SESSION_REQUIRED"


# the room API with end-user tokens


async def test_end_user_creates_a_room_and_sends_a_message_with_a_bearer_token(web: httpx.AsyncClient) -> None:
    created = await signup(web)
    headers = bearer(created["access_token"])
    room = await web.post("/rooms", json={"type": "group", "members": ["bob"], "name": "plans"}, headers=headers)
    assert room.status_code == 201, room.text
    room_id = room.json()["room_id"]
    sent = await web.post(f"/rooms/{room_id}/messages", json={"content": "hello"}, headers=headers)
    assert sent.status_code == 201, sent.text
    listed = (await web.get(f"/rooms/{room_id}/messages", headers=headers)).json()
    assert [(m["sender_id"], m["content"]) for m in listed] == [(created["user"]["user_id"], "hello")]
