"""Two real `roomlog serve` processes share one tenant's rate limit: together they never admit more than it.

One module-scoped run starts two instances on the session's PostgreSQL and NATS, hammers both at once
for a few seconds as one tenant limited to LIMIT requests/s, then overloads a fresh window, waits the
Retry-After it was given and asks again. The tests check what the instances answered; each response is
attributed to the one-second window it was counted in by its X-RateLimit-Reset header.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.identity.tenants import create_tenant
from service.ratelimit.limiter import chunk_for
from tests.conftest import Tenant
from tests.system.conftest import Processes, Serve, roomlog_env

LIMIT = 50
WORKERS_PER_INSTANCE = 8
LOAD_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    instance: int
    status: int
    sent_at: float
    received_at: float
    limit: int | None
    remaining: int | None
    reset: int | None
    retry_after: int | None


@dataclass
class Run:
    answers: list[Answer] = field(default_factory=list)
    burst: list[Answer] = field(default_factory=list)
    after_retry: list[Answer] = field(default_factory=list)
    waited: int = 0


def _int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return None if value is None else int(value)


async def ask(client: httpx.AsyncClient, instance: int, tenant: Tenant) -> Answer:
    """GET /rooms on one instance, noting status and rate-limit headers."""
    sent_at = time.time()
    response = await client.get("/rooms", headers=tenant.as_user("alice"))
    return Answer(
        instance, response.status_code, sent_at, time.time(), _int(response, "x-ratelimit-limit"),
        _int(response, "x-ratelimit-remaining"), _int(response, "x-ratelimit-reset"), _int(response, "retry-after"),
    )


async def at_window_start() -> None:
    """Sleep until just after the next epoch second."""
    now = time.time()
    await asyncio.sleep(int(now) + 1 - now + 0.005)


async def hammer(clients: list[httpx.AsyncClient], tenant: Tenant, seconds: float) -> list[Answer]:
    """WORKERS_PER_INSTANCE closed-loop workers per instance, all at once, for `seconds`."""
    answers: list[Answer] = []
    deadline = time.monotonic() + seconds

    async def worker(instance: int) -> None:
        while time.monotonic() < deadline:
            answers.append(await ask(clients[instance], instance, tenant))

    await asyncio.gather(*(worker(i) for i in range(len(clients)) for _ in range(WORKERS_PER_INSTANCE)))
    return answers


def admitted_per_window(answers: list[Answer]) -> Counter[int]:
    """Admitted requests of both instances per window (keyed by the window's reset second)."""
    return Counter(a.reset for a in answers if a.status == 200 and a.reset is not None)


@pytest.fixture(scope="module")
async def run(database_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """Hammer two instances for LOAD_SECONDS; then overload one window, wait Retry-After, ask again."""
    env = roomlog_env(database_url=database_url, nats_url=nats_url, ROOMLOG_ACCESS_LOG="false")
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_tenant(conn, "two-instances", rate_limit=LIMIT, send_rate_limit=0)
    finally:
        await conn.close()
    tenant = Tenant(created.tenant_id, created.api_key)
    result = Run()
    with Processes(Path(tmp_path_factory.mktemp("ratelimit"))) as processes:
        serves: list[Serve] = [processes.serve(env=env), processes.serve(env=env)]
        await asyncio.gather(*(s.wait_healthy() for s in serves))
        limits = httpx.Limits(max_connections=WORKERS_PER_INSTANCE, max_keepalive_connections=WORKERS_PER_INSTANCE)
        clients = [httpx.AsyncClient(base_url=s.base_url, timeout=10.0, limits=limits) for s in serves]
        try:
            await at_window_start()
            result.answers = await hammer(clients, tenant, LOAD_SECONDS)
            await at_window_start()
            result.burst = list(await asyncio.gather(*(ask(clients[n % 2], n % 2, tenant) for n in range(3 * LIMIT))))
            result.waited = max(a.retry_after or 0 for a in result.burst)
            await asyncio.sleep(result.waited)
            result.after_retry = [await ask(clients[n], n, tenant) for n in range(2)]
        finally:
            for client in clients:
                await client.aclose()
        for serve in serves:
            await serve.signal_and_wait(signal.SIGINT)
    per_window = admitted_per_window(result.answers)
    statuses = Counter((a.instance, a.status) for a in result.answers)
    print(f"\n{len(result.answers)} requests in {LOAD_SECONDS}s, limit {LIMIT}/s; (instance, status): {dict(statuses)}")
    print("admitted per window (both instances):", dict(sorted(per_window.items())))
    yield result


def test_combined_admissions_per_window_never_exceed_the_limit(run: Run) -> None:
    per_window = admitted_per_window(run.answers + run.burst + run.after_retry)
    assert per_window, "nothing was admitted"
    assert max(per_window.values()) <= LIMIT, per_window


def test_both_instances_admit_some_requests_and_refuse_others(run: Run) -> None:
    statuses = Counter((a.instance, a.status) for a in run.answers)
    assert {(0, 200), (0, 429), (1, 200), (1, 429)} <= set(statuses), statuses
    assert set(a.status for a in run.answers) == {200, 429}


def test_a_window_both_instances_refused_in_was_used_to_the_full_limit(run: Run) -> None:
    # A refusal means the instance's lease is empty and the shared window is spent: every token granted
    # to that instance was used. Refused on both, so every token of the window was used.
    refused_on: dict[int, set[int]] = {}
    for a in run.answers:
        if a.status == 429 and a.reset is not None:
            refused_on.setdefault(a.reset, set()).add(a.instance)
    full = [reset for reset, instances in refused_on.items() if instances == {0, 1}]
    assert full, "no window was refused by both instances"
    per_window = admitted_per_window(run.answers)
    assert [per_window[reset] for reset in full] == [LIMIT] * len(full)


def test_a_window_one_instance_refused_in_lost_at_most_one_lease(run: Run) -> None:
    refused = {a.reset for a in run.answers if a.status == 429 and a.reset is not None}
    per_window = admitted_per_window(run.answers)
    assert all(per_window[reset] >= LIMIT - chunk_for(LIMIT) for reset in refused), per_window


def test_every_response_carries_rate_limit_headers(run: Run) -> None:
    for a in run.answers:
        assert a.limit == LIMIT
        assert a.remaining is not None and 0 <= a.remaining < LIMIT
        # Counted in the window that was current while the request was in flight.
        assert a.reset is not None and int(a.sent_at) + 1 <= a.reset <= int(a.received_at) + 1


def test_refusals_carry_retry_after_and_zero_remaining(run: Run) -> None:
    refused = [a for a in run.answers if a.status == 429]
    assert refused
    assert all(a.retry_after is not None and a.retry_after >= 1 and a.remaining == 0 for a in refused)


def test_waiting_retry_after_lets_both_instances_admit_again(run: Run) -> None:
    assert any(a.status == 429 for a in run.burst)
    assert run.waited >= 1
    assert [a.status for a in run.after_retry] == [200, 200]
