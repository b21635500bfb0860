"""Support routing under load: 200 agents, 5,000 sessions arriving over a simulated minute.

A discrete-event simulation drives the pure routing policy (service/domain/support/routing.py) the way
the service does: it routes after every arrival and every end (an agent freeing up). Sessions have mixed
priorities, skills and languages; agents mixed capacities, skills and languages; handle times are
exponential. It prints sessions routed per second of routing work, the time from an agent freeing up to
the assignment decision (p50/p99 of the `route` call at each end), the per-agent load spread (max/min
assignments and a Gini coefficient) and whether capacity held at every step. The seed is printed.

This measures the routing decision only. `--live` then drives a desk of the same agents through the
service's commands on embedded PostgreSQL and NATS (bench/_support_live.py): each routing there also reads
the desk in one snapshot and appends the assignments to the desk stream.

    .venv/bin/python bench/support_routing.py [--agents 200] [--sessions 5000] [--seconds 60] [--seed N] [--live]
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.domain.support.routing import POLICIES, AgentState, Waiting, route

SKILLS = ("billing", "tech", "orders")
TARGET_P99_MS = 50.0


def gini(values: list[int]) -> float:
    """The Gini coefficient of non-negative values (0: perfectly even)."""
    ordered = sorted(values)
    n, total = len(ordered), sum(ordered)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * v for i, v in enumerate(ordered))
    return (2 * weighted) / (n * total) - (n + 1) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60.0, help="the arrivals' simulated span")
    # 40 s: demand (~3,300 concurrent sessions) exceeds capacity (~1,100), so a queue forms and every
    # end routes from it.
    parser.add_argument("--handle", type=float, default=40.0, help="mean handle time, simulated seconds")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="spare_capacity")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--live", action="store_true",
                        help="also drive the desk through the service's commands on embedded PostgreSQL and NATS")
    parser.add_argument("--live-sessions", type=int, default=1500)
    parser.add_argument("--live-ends", type=int, default=300)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"seed {args.seed}, policy {args.policy}")
    policy = POLICIES[args.policy]

    agents = {
        f"ag{n:03}": AgentState(
            f"ag{n:03}", "available", rng.randint(3, 8), 0,
            frozenset(rng.sample(SKILLS, rng.randint(1, 3))),
            frozenset({"en"} | ({"es"} if rng.random() < 0.3 else set())),
        )
        for n in range(args.agents)
    }
    events: list[tuple[float, int, str, str]] = []  # (time, tie, kind, session)
    specs: dict[str, Waiting] = {}
    for n in range(args.sessions):
        at = rng.uniform(0, args.seconds)
        sid = f"s{n:05}"
        specs[sid] = Waiting(
            sid, rng.choices(("urgent", "high", "normal", "low"), (1, 3, 12, 4))[0], 0,
            frozenset(rng.sample(SKILLS, 1)) if rng.random() < 0.6 else frozenset(),
            "es" if rng.random() < 0.1 else None,
        )
        heapq.heappush(events, (at, n, "arrive", sid))
    waiting: dict[str, Waiting] = {}
    arrived_at: dict[str, float] = {}
    serving: dict[str, str] = {}
    assigned_count = {a: 0 for a in agents}
    waits: list[float] = []
    freeup_ms: list[float] = []
    routing_seconds = 0.0
    capacity_held = True
    clock = tie = 0
    while events:
        now, _, kind, sid = heapq.heappop(events)
        if kind == "arrive":
            clock += 1
            waiting[sid] = replace(specs[sid], arrival=clock)
            arrived_at[sid] = now
        else:
            agent = agents[serving.pop(sid)]
            agents[agent.agent_id] = replace(agent, active=agent.active - 1)
        started = time.perf_counter()
        made = route(waiting.values(), list(agents.values()), policy, clock=clock + 1)
        elapsed = time.perf_counter() - started
        routing_seconds += elapsed
        if kind == "end":
            freeup_ms.append(elapsed * 1000)
        for a in made:
            clock += 1
            agent = agents[a.agent_id]
            if agent.active >= agent.max_sessions:
                capacity_held = False
            agents[a.agent_id] = replace(agent, active=agent.active + 1, last_assigned=clock)
            serving[a.session_id] = a.agent_id
            del waiting[a.session_id]
            assigned_count[a.agent_id] += 1
            waits.append(now - arrived_at[a.session_id])
            tie += 1
            heapq.heappush(events, (now + rng.expovariate(1 / args.handle), args.sessions + tie, "end", a.session_id))

    counts = list(assigned_count.values())
    quantiles = statistics.quantiles(freeup_ms, n=100) if len(freeup_ms) > 1 else [0.0] * 99
    print(f"sessions routed: {len(waits)} of {args.sessions} (left waiting: {len(waiting)})")
    print(f"routed per second of routing work: {len(waits) / routing_seconds:,.0f}")
    print(f"agent frees up -> assignment decided: p50 {quantiles[49]:.3f} ms, p99 {quantiles[98]:.3f} ms "
          f"(target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if quantiles[98] <= TARGET_P99_MS else 'NOT met'})")
    print(f"simulated wait: p50 {statistics.median(waits):.1f} s, max {max(waits):.1f} s")
    print(f"load spread: max {max(counts)} / min {min(counts)} assignments per agent, Gini {gini(counts):.3f}")
    print(f"capacity held at every step: {capacity_held}")
    if args.live:
        from bench._support_live import main_live

        main_live(agents=args.agents, sessions=args.live_sessions, ends=args.live_ends, seed=args.seed)
    return 0 if capacity_held else 1


if __name__ == "__main__":
    sys.exit(main())
