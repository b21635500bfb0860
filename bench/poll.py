"""Long-poll wake-up through the real service: P polls waiting on one instance, latency after a send.

Starts `roomlog serve` on the embedded default in a fresh data directory (bench/send.py's server handling),
creates R rooms with P/R polling users each plus a sender, and starts one GET /poll per user (timeout 600)
so that P polls wait at once on the one instance: a round starts once the server's `roomlog_polls_waiting`
gauge (GET /metrics) says all P wait. Each round then sends one message to every room, one after the
other (--interval apart), and measures, for every poll, the time from its room's send answering 201 to
the poll answering with the message; then the polls are started again after the new seq. Prints
p50/p99/max per round and over all rounds, and the CPU seconds of the server and of this generator.

    .venv/bin/python bench/poll.py [--polls 2000] [--rooms 100] [--rounds 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

import httpx
from send import NO_LIMITS, Server, cpu_sample, with_server

SENDER = "sender"
# Long enough that no poll times out while all P are being started on a busy machine.
POLL_TIMEOUT = 600


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a poll did not answer with its room's message."""
    args = _parser().parse_args(argv)
    args.server_env = [*args.server_env, f"ROOMLOG_POLL_MAX_WAITING={max(args.polls * 2, 5000)}",
                       "ROOMLOG_ACCESS_LOG=false", f"ROOMLOG_POLL_MAX_TIMEOUT_SECONDS={POLL_TIMEOUT}"]
    return with_server(args, run, prefix="roomlog-poll-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--polls", type=int, default=2000, help="polls waiting at once (default 2000)")
    p.add_argument("--rooms", type=int, default=100, help="rooms the pollers are spread over (default 100)")
    p.add_argument("--rounds", type=int, default=5, help="send rounds, each waking every poll (default 5)")
    p.add_argument("--interval", type=float, default=0.05,
                   help="seconds between the sends of a round, one room after another (default 0.05)")
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra environment variable for the server (repeatable)")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    p.add_argument("--metrics", choices=["on", "off"], default="on", help="the server's ROOMLOG_METRICS")
    return p


def run(args: argparse.Namespace, server: Server) -> int:
    api_key = server.create_tenant("bench-poll", NO_LIMITS)
    return asyncio.run(_run(args, server, api_key))


async def _run(args: argparse.Namespace, server: Server, api_key: str) -> int:
    limits = httpx.Limits(max_connections=args.polls * 2 + 50, max_keepalive_connections=args.polls * 2 + 50)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", limits=limits,
                                 timeout=POLL_TIMEOUT + 30) as http:
        def as_user(user: str) -> dict[str, str]:
            return {"X-API-Key": api_key, "X-User-Id": user}

        per_room = args.polls // args.rooms
        rooms: list[tuple[str, list[str]]] = []
        seqs: dict[str, int] = {}
        for r in range(args.rooms):
            users = [f"p{r}-{n}" for n in range(per_room)]
            created = await http.post("/rooms", json={"type": "group", "members": users}, headers=as_user(SENDER))
            assert created.status_code == 201, created.text
            rooms.append((created.json()["room_id"], users))
            seqs[created.json()["room_id"]] = created.json()["last_seq"]
        print(f"{len(rooms)} rooms, {per_room * len(rooms)} pollers", flush=True)

        async def poll(user: str, room_id: str, after: int) -> tuple[float, dict[str, Any]]:
            response = await http.get("/poll", params={"rooms": f"{room_id}:{after}", "timeout": POLL_TIMEOUT},
                                      headers=as_user(user))
            return time.monotonic(), response.json()

        async def polls_waiting() -> int:
            text = (await http.get("/metrics")).text
            lines = [line for line in text.splitlines() if line.startswith("roomlog_polls_waiting")]
            return int(float(lines[0].split()[-1])) if lines else 0

        all_latencies: list[float] = []
        failures = 0
        cpu_before = cpu_sample(server, os.getpid())
        for round_no in range(args.rounds):
            tasks = {(user, room_id): asyncio.create_task(poll(user, room_id, seqs[room_id]))
                     for room_id, users in rooms for user in users}
            for _ in range(6000):
                if await polls_waiting() >= len(tasks):
                    break
                await asyncio.sleep(0.05)
            else:
                raise SystemExit(f"only {await polls_waiting()} of {len(tasks)} polls ever waited")
            sent_at: dict[str, float] = {}
            sent_seq: dict[str, int] = {}
            for room_id, _ in rooms:
                response = await http.post(f"/rooms/{room_id}/messages", json={"content": f"round {round_no}"},
                                           headers=as_user(SENDER))
                sent_at[room_id], sent_seq[room_id] = time.monotonic(), response.json()["seq"]
                await asyncio.sleep(args.interval)
            latencies = []
            for (_, room_id), task in tasks.items():
                answered, body = await task
                events = body.get("rooms", {}).get(room_id, {}).get("events", [])
                if [e["seq"] for e in events] != [sent_seq[room_id]]:
                    failures += 1
                    continue
                latencies.append(max(0.0, answered - sent_at[room_id]))
            seqs.update(sent_seq)
            all_latencies += latencies
            print(f"round {round_no}: {_summary(latencies)}", flush=True)
        cpu_after = cpu_sample(server, os.getpid())
        print(f"all rounds ({len(all_latencies)} wake-ups of {args.polls} waiting polls): {_summary(all_latencies)}")
        print("CPU seconds during the rounds:",
              {k: round(cpu_after[k] - cpu_before[k], 2) for k in ("roomlog", "nats", "postgres", "generator")})
        if failures:
            print(f"{failures} polls did not answer with exactly their room's message", file=sys.stderr)
        return 1 if failures else 0


def _summary(latencies: list[float]) -> str:
    if not latencies:
        return "no wake-ups"
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"


if __name__ == "__main__":
    raise SystemExit(main())
