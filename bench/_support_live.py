"""The live half of bench/support_routing.py: the same desk through the service's commands on real servers.

Starts embedded PostgreSQL and nats-server in a temporary directory, a Runtime on them, and one tenant
with the agents. Sessions are started through `start_session` (room, session stream, routing) until every
agent is full and a queue waits; then sessions are ended one at a time through `end` — each end's append,
the routing it triggers (desk snapshot, policy, conditional desk append) and the assigned agent joining
the room — and the time from the end's call to the next waiting session's assignment being committed is
the free-up → assignment latency.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import asyncpg
from _embedded import embedded_runtime  # bench/ is on sys.path when run as a script

from schemas import support as s
from service.commands.support import agents as agent_commands
from service.commands.support import sessions as session_commands
from service.identity.auth import Principal
from service.identity.tenants import create_tenant
from service.runtime import Runtime

SKILLS = ("billing", "tech", "orders")


async def run(*, agents: int, sessions: int, ends: int, seed: int) -> None:
    """Print sessions started per second, free-up → assignment p50/p99 and whether capacity held."""
    rng = random.Random(seed)
    async with embedded_runtime("roomlog-support-bench-") as runtime:
        await _drive(runtime, rng, agents=agents, sessions=sessions, ends=ends)


async def _drive(runtime: Runtime, rng: random.Random, *, agents: int, sessions: int, ends: int) -> None:
    conn = await asyncpg.connect(runtime.settings.database_url)
    try:
        tenant = (await create_tenant(conn, "bench")).tenant_id
        await conn.executemany(
            "INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, $2, $2, $3)",
            [(tenant, f"ag{n:03}", "agent") for n in range(agents)]
            + [(tenant, f"c{n:05}", "customer") for n in range(sessions)],
        )
    finally:
        await conn.close()
    admin = Principal(tenant_id=tenant, user_id="admin", role="admin")
    capacity = 0
    for n in range(agents):
        cap = rng.randint(3, 8)
        capacity += cap
        await agent_commands.set_profile(runtime, admin, f"ag{n:03}", s.AgentProfile(
            max_sessions=cap, skills=rng.sample(SKILLS, rng.randint(2, 3)), languages=["en"]))
        await agent_commands.set_status(runtime, admin, f"ag{n:03}", s.SetAgentStatus(status="available"))
    started = time.perf_counter()
    for n in range(sessions):
        customer = Principal(tenant_id=tenant, user_id=f"c{n:05}", role="customer")
        skills = [rng.choice(SKILLS)] if rng.random() < 0.5 else []
        cmd = s.StartSession(priority=rng.choice(("low", "normal", "normal", "high", "urgent")), skills=skills)
        await session_commands.start_session(runtime, customer, cmd)
    elapsed = time.perf_counter() - started
    print(f"live: {sessions} sessions started and routed in {elapsed:.1f} s = {sessions / elapsed:,.0f}/s "
          f"(each: room, session stream, routing); capacity {capacity}")
    latencies = []
    active = await runtime.pool.fetch(
        "SELECT session_id FROM support_sessions WHERE tenant_id = $1 AND status = 'active'", tenant)
    for row in rng.sample(list(active), min(ends, len(active))):
        before = await runtime.pool.fetchval("SELECT count(*) FROM support_assignments WHERE tenant_id = $1", tenant)
        t0 = time.perf_counter()
        await session_commands.end(runtime, admin, row["session_id"], s.EndSession())
        latencies.append((time.perf_counter() - t0) * 1000)
        after = await runtime.pool.fetchval("SELECT count(*) FROM support_assignments WHERE tenant_id = $1", tenant)
        assert after >= before, "an end assigned nothing though sessions wait"
    over = await runtime.pool.fetchval(
        "SELECT count(*) FROM support_agents a WHERE a.tenant_id = $1 AND a.max_sessions < (SELECT count(*)"
        " FROM support_sessions x WHERE x.tenant_id = a.tenant_id AND x.agent_id = a.agent_id"
        " AND x.status IN ('active', 'on_hold'))", tenant)
    waiting = await runtime.pool.fetchval(
        "SELECT count(*) FROM support_sessions WHERE tenant_id = $1 AND status IN ('queued', 'transferred')", tenant)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    print(f"live: agent frees up (end call) -> next session's assignment committed: p50 {q[49]:.1f} ms, "
          f"p99 {q[98]:.1f} ms over {len(latencies)} ends with {waiting} still waiting")
    print(f"live: capacity held: {over == 0}")


def main_live(*, agents: int, sessions: int, ends: int, seed: int) -> None:
    """Entry point for support_routing.py --live."""
    asyncio.run(run(agents=agents, sessions=sessions, ends=ends, seed=seed))
