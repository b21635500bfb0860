"""The SLA clock fold's cost: how long `fold_clock` takes for one ticket on a business-hours calendar.

Random tickets (seeded; the seed is printed) of 2 to 20 clock events over up to two weeks, in Europe/Berlin
with two working periods a day on weekdays and a few holidays, first-response, next-response and
resolution targets; each ticket is folded at a random `now`. It prints folds per second and the p50/p99
time of one fold, with a cold calendar cache (the first fold of each calendar day computes its UTC
intervals) and warm. The fold is what a ticket read, a list filter on `sla_status` or the breach timer
(when a clock changes) would call.

    .venv/bin/python bench/sla_fold.py [--tickets 5000] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.sla import WEEKDAYS, BusinessCalendar, ClockEvent, PolicyTargets, SlaPolicy, WorkingPeriod
from service.domain.support.calendars import compile_calendar, working_intervals
from service.domain.support.sla import fold_clock

STATUSES = ("open", "pending", "on_hold", "solved", "open")
KINDS = ("status_changed", "agent_replied", "customer_replied")


def ticket(rng: random.Random, start: datetime) -> tuple[list[ClockEvent], datetime]:
    """One ticket's clock events and the instant to fold it at."""
    events = [ClockEvent(kind="created", at=start)]
    t = start
    for _ in range(rng.randint(1, 19)):
        t += timedelta(minutes=rng.randint(1, 1000))
        kind = rng.choice(KINDS)
        events.append(ClockEvent(kind=kind, at=t, status=rng.choice(STATUSES) if kind == "status_changed" else None))
    return events, t + timedelta(minutes=rng.randint(0, 600))


def run(tickets: int, seed: int, *, cold: bool) -> list[float]:
    rng = random.Random(seed)
    calendar = compile_calendar(BusinessCalendar(
        timezone="Europe/Berlin",
        periods=tuple(WorkingPeriod(d, s, e) for d in WEEKDAYS[:5]
                      for s, e in (("08:00", "12:00"), ("13:00", "18:00"))),
        holidays=(date(2026, 10, 3), date(2026, 12, 25), date(2026, 12, 26)),
    ))
    policy = SlaPolicy(targets=PolicyTargets(first_response_minutes=60, resolution_minutes=960,
                                             next_response_minutes=120))
    base = datetime(2026, 9, 1, tzinfo=UTC)
    samples = []
    for _ in range(tickets):
        events, now = ticket(rng, base + timedelta(minutes=rng.randint(0, 120 * 24 * 60)))
        if cold:
            working_intervals.cache_clear()
        started = time.perf_counter()
        fold_clock(events, policy, calendar, now)
        samples.append(time.perf_counter() - started)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99)]
    print(f"{label}: {len(samples) / sum(samples):,.0f} folds/s, p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.tickets} tickets")
    report("cold calendar cache", run(min(args.tickets, 1000), args.seed, cold=True))
    report("warm calendar cache", run(args.tickets, args.seed, cold=False))


if __name__ == "__main__":
    main()
