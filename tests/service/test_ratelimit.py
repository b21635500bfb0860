"""Rate limits: the shared lease statement, the local windows, and the limits as the HTTP API applies them."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from schemas.config import Settings
from service.app import create_app
from service.identity.auth import Authenticator, Principal
from service.identity.tenants import create_tenant
from service.ratelimit.limiter import (
    STATE_KEY,
    SWEEP_SECONDS,
    Decision,
    GroupLease,
    LeaseRequest,
    RateLimiter,
    Windows,
    chunk_for,
    lease,
    lease_many,
    retry_after,
)
from service.runtime import Runtime
from tests.conftest import Tenant

PLATFORM_KEY = "rlk_platform_" + uuid.uuid4().hex


class FakeClock:
    """A settable epoch clock, starting a quarter into the current second (rows near now escape the sweep)."""

    def __init__(self) -> None:
        self.now = int(time.time()) + 0.25

    def __call__(self) -> float:
        return self.now


def new_key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def used_of(pool: asyncpg.Pool, key: str) -> int | None:
    """What the shared counter holds for key (None: no row)."""
    value = await pool.fetchval("SELECT used FROM rate_windows WHERE key = $1", key)
    return None if value is None else int(value)


async def limited_tenant(database_url: str, *, rate_limit: int | None, send_rate_limit: int | None = 0) -> Tenant:
    """A fresh tenant with the given limits."""
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_tenant(conn, "limited", rate_limit=rate_limit, send_rate_limit=send_rate_limit)
    finally:
        await conn.close()
    return Tenant(created.tenant_id, created.api_key)


async def at_window_start() -> None:
    """Sleep until just after the next epoch second, so what follows runs inside one window."""
    now = time.time()
    await asyncio.sleep(int(now) + 1 - now + 0.005)


def rate_headers(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from a response's X-RateLimit-* headers."""
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


# --- the lease statement ----------------------------------------------------------------------------------


def now_window() -> int:
    return int(time.time())


async def test_lease_grants_a_chunk_and_counts_it_in_the_shared_window(pool: asyncpg.Pool) -> None:
    key = new_key()
    got = await lease(pool, key, now_window(), chunk=5, limit=50)
    assert (got.granted, got.taken) == (5, 5)
    assert await used_of(pool, key) == 5


async def test_lease_grants_only_what_is_left_of_the_limit(pool: asyncpg.Pool) -> None:
    key, window = new_key(), now_window()
    grants = [(await lease(pool, key, window, chunk=5, limit=12)).granted for _ in range(4)]
    assert grants == [5, 5, 2, 0]


async def test_lease_starts_over_in_a_new_window(pool: asyncpg.Pool) -> None:
    key, window = new_key(), now_window()
    for _ in range(3):
        await lease(pool, key, window, chunk=5, limit=10)
    got = await lease(pool, key, window + 1, chunk=5, limit=10)
    assert (got.granted, got.taken) == (5, 5)


async def test_lease_for_a_window_older_than_the_shared_one_grants_nothing(pool: asyncpg.Pool) -> None:
    key, window = new_key(), now_window()
    await lease(pool, key, window + 1, chunk=5, limit=10)
    assert (await lease(pool, key, window, chunk=5, limit=10)).granted == 0
    assert await used_of(pool, key) == 5


@pytest.mark.parametrize(("limit", "chunk", "leases"), [(97, 3, 300), (50, 1, 200), (10, 7, 100)])
async def test_concurrent_leases_from_many_connections_grant_exactly_the_limit_in_total(
    database_url: str, limit: int, chunk: int, leases: int
) -> None:
    key, window = new_key(), now_window()
    async with asyncpg.create_pool(database_url, min_size=8, max_size=8) as many:
        got = await asyncio.gather(*(lease(many, key, window, chunk=chunk, limit=limit) for _ in range(leases)))
    assert sum(g.granted for g in got) == limit
    assert all(0 <= g.granted <= chunk for g in got)


async def test_one_statement_leases_for_many_keys(pool: asyncpg.Pool) -> None:
    a, b, c, window = new_key(), new_key(), new_key(), now_window()
    await lease(pool, b, window, chunk=4, limit=6)
    got = await lease_many(pool, [
        LeaseRequest(a, window, 4, 10), LeaseRequest(b, window, 4, 6), LeaseRequest(c, window - 1, 1, 1),
    ])
    assert got[a].granted == 4
    assert got[b].granted == 2
    assert got[c].granted == 1


async def test_concurrent_multi_key_leases_in_any_key_order_neither_deadlock_nor_overgrant(database_url: str) -> None:
    keys, window, rng = [new_key() for _ in range(40)], now_window(), random.Random(4)
    batches = [rng.sample(keys, len(keys)) for _ in range(200)]
    async with asyncpg.create_pool(database_url, min_size=8, max_size=8) as many:
        got = await asyncio.gather(*(
            lease_many(many, [LeaseRequest(k, window, 2, 300) for k in batch]) for batch in batches
        ))
    assert {k: sum(g[k].granted for g in got) for k in keys} == {k: 300 for k in keys}


async def test_group_lease_answers_every_key_waiting_at_once(pool: asyncpg.Pool) -> None:
    group, keys, window = GroupLease(pool), [new_key() for _ in range(50)], now_window()
    got = await asyncio.gather(*(group.lease(LeaseRequest(k, window, 3, 10)) for k in keys))
    assert [g.granted for g in got] == [3] * 50


async def test_group_lease_sends_a_repeated_key_in_separate_statements(pool: asyncpg.Pool) -> None:
    group, key, window = GroupLease(pool), new_key(), now_window()
    got = await asyncio.gather(*(group.lease(LeaseRequest(key, window, 3, 10)) for _ in range(4)))
    assert sorted(g.granted for g in got) == [1, 3, 3, 3]
    assert await used_of(pool, key) == 12


# --- local windows ----------------------------------------------------------------------------------------


async def test_local_lease_serves_requests_without_touching_the_shared_counter(pool: asyncpg.Pool) -> None:
    windows, key = Windows(pool, clock=FakeClock()), new_key()
    for _ in range(chunk_for(100)):
        assert (await windows.take(key, 100)).allowed
    assert await used_of(pool, key) == chunk_for(100)
    await windows.take(key, 100)
    assert await used_of(pool, key) == 2 * chunk_for(100)


async def test_take_local_needs_a_lease_before_the_first_request(pool: asyncpg.Pool) -> None:
    windows, key = Windows(pool, clock=FakeClock()), new_key()
    assert windows.take_local(key, 100) is None
    await windows.take(key, 100)
    assert windows.take_local(key, 100) is not None


async def test_spent_window_refuses_without_asking_the_database_again(pool: asyncpg.Pool) -> None:
    windows, key = Windows(pool, clock=FakeClock()), new_key()
    allowed = [(await windows.take(key, 3)).allowed for _ in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    # Three leases of one token plus the one that found the window spent; none after that.
    assert await used_of(pool, key) == 4


async def test_a_new_window_admits_again(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    windows, key = Windows(pool, clock=clock), new_key()
    for _ in range(3):
        await windows.take(key, 2)
    clock.now += 1
    assert (await windows.take(key, 2)).allowed


async def test_decision_reports_remaining_and_the_end_of_the_window(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    windows, key = Windows(pool, clock=clock), new_key()
    decisions = [await windows.take(key, 100) for _ in range(3)]
    assert [d.remaining for d in decisions] == [99, 98, 97]
    assert {d.reset for d in decisions} == {int(clock.now) + 1}
    assert {d.limit for d in decisions} == {100}


async def test_remaining_reflects_what_other_instances_took_as_of_the_last_lease(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    a, b, key = Windows(pool, clock=clock), Windows(pool, clock=clock), new_key()
    await a.take(key, 40)  # a leases one chunk
    await b.take(key, 40)  # b leases another: two chunks taken in all
    # Remaining: the limit less both chunks, plus what b still holds unused of its own (two used so far).
    assert (await b.take(key, 40)).remaining == 40 - 2 * chunk_for(40) + (chunk_for(40) - 2)


async def test_two_instances_together_admit_at_most_the_limit_per_window(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    instances, key, limit = [Windows(pool, clock=clock) for _ in range(3)], new_key(), 40
    decisions = await asyncio.gather(*(instances[n % 3].take(key, limit) for n in range(150)))
    admitted = sum(d.allowed for d in decisions)
    # Leased but unused tokens are lost at the end of the window, never more than one chunk per instance.
    assert limit - 3 * chunk_for(limit) <= admitted <= limit


async def test_concurrent_requests_on_one_instance_share_one_lease_at_a_time(pool: asyncpg.Pool) -> None:
    windows, key = Windows(pool, clock=FakeClock()), new_key()
    decisions = await asyncio.gather(*(windows.take(key, 100) for _ in range(30)))
    assert all(d.allowed for d in decisions)
    # Thirty requests share whole chunks: as few leases as the chunk size allows, not thirty.
    assert await used_of(pool, key) == math.ceil(30 / chunk_for(100)) * chunk_for(100)


async def test_rows_of_idle_keys_are_swept(pool: asyncpg.Pool) -> None:
    idle, windows = new_key(), Windows(pool, clock=FakeClock())
    await lease(pool, idle, now_window() - 2 * SWEEP_SECONDS, chunk=1, limit=1)
    await windows.take(new_key(), 10)  # an instance's first lease sweeps
    assert windows.sweeping is not None
    await windows.sweeping
    assert await used_of(pool, idle) is None


async def test_a_failing_shared_counter_admits_requests(database_url: str) -> None:
    closed = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await closed.close()
    windows = Windows(closed, clock=FakeClock())
    decision = await windows.take(new_key(), 100)
    if windows.sweeping is not None:
        await windows.sweeping  # fails too, quietly
    assert decision.allowed


@hypothesis_settings(max_examples=50, deadline=None)
@given(reset=st.integers(min_value=1, max_value=2_000_000_000), before=st.floats(min_value=0, max_value=1))
def test_retry_after_within_a_one_second_window_is_one_second(reset: int, before: float) -> None:
    assert retry_after(Decision(False, 10, 0, reset), reset - before) == 1


async def test_local_check_takes_microseconds_not_milliseconds(pool: asyncpg.Pool, tenant: Tenant) -> None:
    limiter = RateLimiter(pool, default_requests=10**9, default_sends=0)
    key, n = new_key(), 50_000
    await limiter.windows.take(key, 10**9)
    started = time.perf_counter_ns()
    for _ in range(n):
        limiter.windows.take_local(key, 10**9)
    local_ns = (time.perf_counter_ns() - started) / n
    principal, state = Principal(tenant.tenant_id, "alice"), dict[str, Decision]()
    await limiter.admit_request(principal, state)
    started = time.perf_counter_ns()
    for _ in range(n):
        await limiter.admit_request(principal, state)
    admit_ns = (time.perf_counter_ns() - started) / n
    print(f"\nrate limit check: take_local {local_ns:.0f} ns/check, admit_request {admit_ns:.0f} ns/check")
    # Generous bounds (a shared, busy machine): the budget is "well under a millisecond".
    assert local_ns < 20_000
    assert admit_ns < 50_000


# --- limits as the service applies them -------------------------------------------------------------------


async def test_null_limits_mean_the_configured_defaults(pool: asyncpg.Pool, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=None, send_rate_limit=None)
    limiter = RateLimiter(pool, default_requests=7, default_sends=3)
    state: dict[str, Decision] = {}
    await limiter.admit_request(Principal(t.tenant_id, "alice"), state)
    assert state[STATE_KEY].limit == 7
    await limiter.admit_send(Principal(t.tenant_id, "alice"), state)
    assert state[STATE_KEY].limit == 3


async def test_platform_admin_is_not_limited(pool: asyncpg.Pool, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=1)
    limiter = RateLimiter(pool, default_requests=1, default_sends=1)
    state: dict[str, Decision] = {}
    for _ in range(5):
        await limiter.admit_request(Principal(t.tenant_id, "platform", role="platform", via="platform"), state)
    assert state == {}


async def test_requests_over_the_tenant_limit_get_429(client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=10)
    await at_window_start()
    responses = await asyncio.gather(*(client.get("/rooms", headers=t.as_user("alice")) for _ in range(25)))
    ok_per_window = Counter(rate_headers(r)[2] for r in responses if r.status_code == 200)
    assert max(ok_per_window.values()) <= 10
    assert sum(ok_per_window.values()) >= 10
    assert {r.status_code for r in responses} == {200, 429}


async def test_429_carries_retry_after_and_rate_limit_headers(client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=2)
    await at_window_start()
    responses = [await client.get("/rooms", headers=t.as_user("alice")) for _ in range(3)]
    refused = responses[-1]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(refused.headers["retry-after"]) >= 1
    limit, remaining, reset = rate_headers(refused)
    assert (limit, remaining) == (2, 0)
    assert reset == rate_headers(responses[0])[2]
    assert reset - 1 <= time.time() + int(refused.headers["retry-after"]) <= reset + 1


async def test_remaining_counts_down_within_a_window(client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=100)
    await at_window_start()
    responses = [await client.get("/rooms", headers=t.as_user("alice")) for _ in range(4)]
    assert [rate_headers(r) for r in responses] == [(100, 99 - n, rate_headers(responses[0])[2]) for n in range(4)]
    assert rate_headers(responses[0])[2] == int(time.time()) + 1


async def test_every_authenticated_response_carries_rate_limit_headers(
    client: httpx.AsyncClient, database_url: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=1000)
    alice = t.as_user("alice")
    created = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=alice)
    room_id = created.json()["room_id"]
    responses = [
        created,
        await client.get("/rooms", headers=alice),
        await client.get(f"/rooms/{room_id}", headers=alice),
        await client.post(f"/rooms/{room_id}/messages", json={"content": "hi"}, headers=alice),
        await client.get("/rooms/room_missing", headers=alice),  # 404
        await client.post("/rooms", json={"type": "nope"}, headers=alice),  # 400
        await client.get(f"/rooms/{room_id}/messages", headers=t.as_user("mallory")),  # 403
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 201, 404, 400, 403]
    assert all(rate_headers(r)[0] == 1000 for r in responses)


async def test_unlimited_tenant_gets_no_429_and_touches_no_counter(
    client: httpx.AsyncClient, database_url: str, pool: asyncpg.Pool
) -> None:
    t = await limited_tenant(database_url, rate_limit=0)
    responses = await asyncio.gather(*(client.get("/rooms", headers=t.as_user("alice")) for _ in range(150)))
    assert {r.status_code for r in responses} == {200}
    assert "x-ratelimit-limit" not in responses[0].headers
    assert await used_of(pool, f"t:{t.tenant_id}") is None


async def test_waiting_retry_after_seconds_lets_requests_through_again(
    client: httpx.AsyncClient, database_url: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=1)
    await at_window_start()
    await client.get("/rooms", headers=t.as_user("alice"))
    refused = await client.get("/rooms", headers=t.as_user("alice"))
    assert refused.status_code == 429
    await asyncio.sleep(int(refused.headers["retry-after"]))
    assert (await client.get("/rooms", headers=t.as_user("alice"))).status_code == 200


async def room_with(client: httpx.AsyncClient, tenant: Tenant, *members: str) -> str:
    created = await client.post("/rooms", json={"type": "group", "members": list(members)},
                                headers=tenant.as_user(members[0]))
    assert created.status_code == 201, created.text
    room_id: str = created.json()["room_id"]
    return room_id


async def test_send_limit_applies_to_each_user_separately(client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=0, send_rate_limit=3)
    room_id = await room_with(client, t, "alice", "bob")
    await at_window_start()

    async def send(user: str) -> int:
        response = await client.post(f"/rooms/{room_id}/messages", json={"content": "x"}, headers=t.as_user(user))
        return response.status_code

    alice = [await send("alice") for _ in range(5)]
    bob = [await send("bob") for _ in range(3)]
    assert alice == [201, 201, 201, 429, 429]
    assert bob == [201, 201, 201]


async def test_send_limit_refusal_describes_the_send_limit(client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=1000, send_rate_limit=1)
    room_id = await room_with(client, t, "alice")
    await at_window_start()
    sends = [
        await client.post(f"/rooms/{room_id}/messages", json={"content": "x"}, headers=t.as_user("alice"))
        for _ in range(2)
    ]
    assert [s.status_code for s in sends] == [201, 429]
    assert rate_headers(sends[1])[:2] == (1, 0)
    assert int(sends[1].headers["retry-after"]) >= 1
    # Other requests of the same user still pass: the send limit counts sends only.
    assert (await client.get(f"/rooms/{room_id}/messages", headers=t.as_user("alice"))).status_code == 200


# --- tenant settings API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_app(settings: Settings, runtime: Runtime) -> Starlette:
    """The app as configured with a platform admin key (sharing the session runtime's pool and limiter)."""
    with_key = msgspec.structs.replace(settings, platform_admin_key=PLATFORM_KEY)
    auth = Authenticator(runtime.pool, runtime.auth.signer, platform_admin_key=PLATFORM_KEY)
    return create_app(with_key, runtime=dataclasses.replace(runtime, settings=with_key, auth=auth))


@pytest.fixture
async def admin_client(admin_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app that knows the platform admin key."""
    transport = httpx.ASGITransport(app=admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
        yield c


PLATFORM = {"X-API-Key": PLATFORM_KEY}


async def test_platform_admin_reads_tenant_settings(admin_client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=42, send_rate_limit=None)
    response = await admin_client.get(f"/admin/tenants/{t.tenant_id}", headers=PLATFORM)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("tenant_id", "name", "rate_limit", "send_rate_limit")} == {
        "tenant_id": t.tenant_id, "name": "limited", "rate_limit": 42, "send_rate_limit": None,
    }
    assert body["created_at"]


async def test_platform_admin_requests_carry_no_rate_limit_headers(
    admin_client: httpx.AsyncClient, database_url: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=1)
    responses = [await admin_client.get(f"/admin/tenants/{t.tenant_id}", headers=PLATFORM) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "x-ratelimit-limit" not in responses[-1].headers


async def test_changed_limit_applies_at_once_on_the_instance_that_changed_it(
    admin_client: httpx.AsyncClient, database_url: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=50)
    assert rate_headers(await admin_client.get("/rooms", headers=t.as_user("alice")))[0] == 50
    patched = await admin_client.patch(f"/admin/tenants/{t.tenant_id}", json={"rate_limit": 5}, headers=PLATFORM)
    assert patched.status_code == 200
    assert patched.json()["rate_limit"] == 5
    assert rate_headers(await admin_client.get("/rooms", headers=t.as_user("alice")))[0] == 5


async def test_changed_limit_reaches_other_instances_within_the_cache_time(
    admin_client: httpx.AsyncClient, database_url: str, pool: asyncpg.Pool
) -> None:
    t = await limited_tenant(database_url, rate_limit=50)
    other = RateLimiter(pool, default_requests=100, default_sends=20, cache_seconds=0.3)
    alice, state = Principal(t.tenant_id, "alice"), dict[str, Decision]()
    await other.admit_request(alice, state)
    await admin_client.patch(f"/admin/tenants/{t.tenant_id}", json={"rate_limit": 6}, headers=PLATFORM)
    await other.admit_request(alice, state)
    assert state[STATE_KEY].limit == 50  # still cached
    await asyncio.sleep(0.35)
    await other.admit_request(alice, state)
    assert state[STATE_KEY].limit == 6


async def test_patch_zero_makes_a_tenant_unlimited_and_null_restores_the_default(
    admin_client: httpx.AsyncClient, database_url: str, runtime: Runtime
) -> None:
    t = await limited_tenant(database_url, rate_limit=5)
    url = f"/admin/tenants/{t.tenant_id}"
    await admin_client.patch(url, json={"rate_limit": 0}, headers=PLATFORM)
    assert "x-ratelimit-limit" not in (await admin_client.get("/rooms", headers=t.as_user("alice"))).headers
    restored = await admin_client.patch(url, json={"rate_limit": None}, headers=PLATFORM)
    assert restored.json()["rate_limit"] is None
    limits = await runtime.limiter.tenants.get(t.tenant_id)
    assert limits.requests == runtime.settings.default_rate_limit


async def test_patch_changes_only_the_fields_it_names(admin_client: httpx.AsyncClient, database_url: str) -> None:
    t = await limited_tenant(database_url, rate_limit=5, send_rate_limit=7)
    patched = await admin_client.patch(f"/admin/tenants/{t.tenant_id}", json={"send_rate_limit": 9}, headers=PLATFORM)
    assert (patched.json()["rate_limit"], patched.json()["send_rate_limit"]) == (5, 9)


@pytest.mark.parametrize("body", [{"rate_limit": -1}, {"rate_limit": "many"}, {"burst": 5}, {"rate_limit": 2**31}])
async def test_patch_rejects_bad_limits_with_400(
    admin_client: httpx.AsyncClient, database_url: str, body: dict[str, object]
) -> None:
    t = await limited_tenant(database_url, rate_limit=5)
    response = await admin_client.patch(f"/admin/tenants/{t.tenant_id}", json=body, headers=PLATFORM)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_tenant_settings_of_an_unknown_tenant_are_404(admin_client: httpx.AsyncClient, method: str) -> None:
    response = await admin_client.request(method, "/admin/tenants/tn_missing", json={}, headers=PLATFORM)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "TENANT_NOT_FOUND"


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_tenant_settings_refuse_tenant_admins_with_403(
    admin_client: httpx.AsyncClient, database_url: str, method: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=1000)
    response = await admin_client.request(
        method, f"/admin/tenants/{t.tenant_id}", json={"rate_limit": 0}, headers=t.as_user("admin")
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "NOT_PLATFORM_ADMIN"


async def test_tenant_settings_refuse_a_wrong_platform_key_with_401(
    admin_client: httpx.AsyncClient, database_url: str
) -> None:
    t = await limited_tenant(database_url, rate_limit=1000)
    response = await admin_client.get(f"/admin/tenants/{t.tenant_id}", headers={"X-API-Key": PLATFORM_KEY + "x"})
    assert response.status_code == 401

