"""Two real `roomlog serve` processes routing one tenant's support desk at once: no agent is ever over capacity.

Sessions start and end, and agents change status and capacity, concurrently through both instances; both
route after every such change. The log is then folded in position order (an end visible to a router's
snapshot precedes that router's assignments in the log): at every assignment the agent's load stayed
within their max_sessions at that moment, and in the end no session waits while an agent could take it.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tests.conftest import Tenant, make_tenant
from tests.system._servers import Api, start_serve
from tests.system.conftest import Processes, Serve

AGENTS = {f"ag{n}": 2 for n in range(4)}
SESSIONS = 40


@dataclass
class Pair:
    serves: list[Serve]


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str) -> AsyncIterator[Pair]:
    with Processes(tmp_path_factory.mktemp("support-instances")) as procs:
        yield Pair([await start_serve(procs, database_url=database_url, nats_url=nats_url) for _ in range(2)])


async def ok(response: object, status: int = 200) -> dict[str, object]:
    assert getattr(response, "status_code") == status, getattr(response, "text")  # noqa: B009
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


async def test_two_instances_routing_at_once_never_exceed_an_agents_capacity(
    pair: Pair, database_url: str
) -> None:
    tenant: Tenant = await make_tenant(database_url)
    rng = random.Random(1313)
    print("seed 1313")
    apis = [Api(s.base_url, tenant) for s in pair.serves]
    try:
        first = apis[0]
        for agent, cap in AGENTS.items():
            await ok(await first.call("POST", "/users", "admin", {"user_id": agent, "display_name": agent,
                                                                  "role": "agent"}), 201)
            await ok(await first.call("PUT", f"/support/agents/{agent}", "admin", {"max_sessions": cap}))
        for n in range(SESSIONS):
            await ok(await first.call("POST", "/users", "admin", {"user_id": f"c{n}", "display_name": "c",
                                                                  "role": "customer"}), 201)

        async def start(n: int) -> str:
            body = await ok(await rng.choice(apis).call("POST", "/support/sessions", f"c{n}", {}), 201)
            return str(body["session_id"])

        async def flip(agent: str) -> None:
            for status in ("available", "away", "available"):
                await ok(await rng.choice(apis).call("PUT", f"/support/agents/{agent}/status", agent,
                                                     {"status": status}))

        async def resize(agent: str) -> None:
            await ok(await rng.choice(apis).call("PUT", f"/support/agents/{agent}", "admin",
                                                 {"max_sessions": rng.choice((1, 3))}))

        work = [start(n) for n in range(SESSIONS)] + [flip(a) for a in AGENTS] + [resize("ag0"), resize("ag1")]
        rng.shuffle(work)
        results = await asyncio.gather(*work)
        sessions = [r for r in results if isinstance(r, str)]

        async def end(session_id: str) -> None:
            response = await rng.choice(apis).call("POST", f"/support/sessions/{session_id}/end", "admin", {})
            assert response.status_code in (200, 409), response.text

        async def back(agent: str) -> None:
            await ok(await rng.choice(apis).call("PUT", f"/support/agents/{agent}/status", agent,
                                                 {"status": "available"}))

        await asyncio.gather(*(end(s) for s in rng.sample(sessions, SESSIONS // 2)), *(back(a) for a in AGENTS))
    finally:
        for api in apis:
            await api.http.aclose()

    conn = await asyncpg.connect(database_url)
    try:
        over, assignments = await _fold(conn, tenant.tenant_id)
        waiting = await conn.fetchval(
            "SELECT count(*) FROM support_sessions WHERE tenant_id = $1 AND status IN ('queued', 'transferred')",
            tenant.tenant_id)
        spare = await conn.fetchval(
            "SELECT coalesce(sum(greatest(a.max_sessions - (SELECT count(*) FROM support_sessions s"
            " WHERE s.tenant_id = a.tenant_id AND s.agent_id = a.agent_id"
            " AND s.status IN ('active', 'on_hold')), 0)), 0)"
            " FROM support_agents a WHERE a.tenant_id = $1 AND a.status = 'available'", tenant.tenant_id)
    finally:
        await conn.close()
    assert over == []
    assert assignments >= sum(AGENTS.values())  # the instances did route, concurrently
    assert waiting == 0 or spare == 0  # work-conserving once everything settled


async def _fold(conn: asyncpg.Connection, tenant_id: str) -> tuple[list[tuple[int, str, int, int]], int]:
    """Loads by log position: every assignment that found its agent at or over their capacity, and the count.

    An assignment answers one wait of its session (`arrival`): one that lands after the session ended, or
    after a transfer or escalation began a new wait, changes nothing (as in projections/support_sessions.py)
    and takes no capacity.
    """
    rows = await conn.fetch(
        "SELECT position, stream_id, type, data::text AS data FROM events WHERE tenant_id = $1"
        " AND type LIKE 'support.%' ORDER BY position", tenant_id)
    cap: dict[str, int] = {}
    load: dict[str, int] = {}
    holder: dict[str, str] = {}
    session_of: dict[str, str] = {}  # session stream -> session id
    wait_from: dict[str, int] = {}  # session id -> position its current wait began at
    ended: set[str] = set()
    over: list[tuple[int, str, int, int]] = []
    count = 0
    for row in rows:
        data = json.loads(row["data"])
        kind = row["type"]
        if kind == "support.agent.profile_set":
            cap[data["agent_id"]] = data["max_sessions"]
        elif kind == "support.session.created":
            session_of[row["stream_id"]] = data["session_id"]
            wait_from[data["session_id"]] = row["position"]
        elif kind == "support.session.assigned":
            session = data["session_id"]
            arrival = data.get("arrival", 0)
            if session in ended or (arrival and arrival != wait_from.get(session, arrival)):
                continue
            count += 1
            agent = data["agent_id"]
            if load.get(agent, 0) >= cap[agent]:
                over.append((row["position"], agent, load.get(agent, 0), cap[agent]))
            load[agent] = load.get(agent, 0) + 1
            holder[session] = agent
        elif kind in ("support.session.ended", "support.session.transferred", "support.session.escalated"):
            session = session_of.get(row["stream_id"], row["stream_id"])
            if kind == "support.session.ended":
                ended.add(session)
            else:
                wait_from[session] = row["position"]
            agent = holder.pop(session, None)
            if agent is not None:
                load[agent] -= 1
    return over, count
