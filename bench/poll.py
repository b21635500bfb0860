"""Long-poll wake-up through the real service: P polls waiting on one instance, latency after a send.

Starts `roomlog serve` on the embedded default in a fresh data directory (bench/send.py's server handling),
creates R rooms with P/R polling users each plus a sender, and starts one GET /poll per user (timeout 600),
so that P polls wait at once on the one instance. Then, --sends times: once the server's
`roomlog_polls_waiting` gauge (GET /metrics) says all P wait, send one message to the next room and take,
for each of that room's polls, the time from the send answering 201 to the poll's answer arriving (its
first byte); check the answer holds exactly that message; start those polls again after the new seq. So
every send happens with P polls waiting. Prints p50/p99/max of the wake-ups and the CPU seconds of the
server and of this generator. A plain NATS subscription of the generator to the rooms' subjects splits each
wake-up into the relay's part (201 → the event on NATS) and the instance's (NATS → the poll's answer), so a
slow wake-up says where it waited.

The polls are plain asyncio streams writing one HTTP/1.1 request each (no client library), so the
generator's own cost per poll stays small next to the server's.

    .venv/bin/python bench/poll.py [--polls 2000] [--rooms 100] [--sends 100] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import httpx
import nats
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
    p.add_argument("--sends", type=int, default=100, help="sends, each with every poll waiting (default 100)")
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


async def _poll(port: int, api_key: str, user: str, room_id: str, after: int) -> tuple[float, dict[str, Any]]:
    """One GET /poll on a connection of its own: (when its answer began to arrive, its body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /poll?rooms={room_id}:{after}&timeout={POLL_TIMEOUT} HTTP/1.1\r\nHost: bench\r\n"
                     f"X-API-Key: {api_key}\r\nX-User-Id: {user}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        await reader.readline()  # the status line
        arrived = time.monotonic()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return arrived, json.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def _run(args: argparse.Namespace, server: Server, api_key: str) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as http:
        headers = {"X-API-Key": api_key, "X-User-Id": SENDER}
        per_room = args.polls // args.rooms
        rooms: list[tuple[str, list[str]]] = []
        seqs: dict[str, int] = {}
        for r in range(args.rooms):
            users = [f"p{r}-{n}" for n in range(per_room)]
            created = await http.post("/rooms", json={"type": "group", "members": users}, headers=headers)
            assert created.status_code == 201, created.text
            rooms.append((created.json()["room_id"], users))
            seqs[created.json()["room_id"]] = created.json()["last_seq"]
        total = per_room * len(rooms)

        async def polls_waiting() -> int:
            lines = [line for line in (await http.get("/metrics")).text.splitlines()
                     if line.startswith("roomlog_polls_waiting")]
            return int(float(lines[0].split()[-1])) if lines else 0

        async def all_waiting() -> None:
            for _ in range(12000):
                if await polls_waiting() >= total:
                    return
                await asyncio.sleep(0.02)
            raise SystemExit(f"only {await polls_waiting()} of {total} polls ever waited")

        def arm(room_id: str, users: list[str]) -> list[asyncio.Task[tuple[float, dict[str, Any]]]]:
            return [asyncio.create_task(_poll(server.port, api_key, u, room_id, seqs[room_id])) for u in users]

        tasks = {room_id: arm(room_id, users) for room_id, users in rooms}
        started = time.monotonic()
        await all_waiting()
        print(f"{total} polls waiting over {len(rooms)} rooms after {time.monotonic() - started:.1f} s", flush=True)
        on_nats: dict[tuple[str, int], float] = {}

        async def tap(msg: Any) -> None:
            event = json.loads(msg.data)
            on_nats[(event["stream_id"], event["seq"])] = time.monotonic()

        nc = await nats.connect(_nats_url(server))
        await nc.subscribe("rl.*.room.*", cb=tap)
        await nc.flush()
        latencies: list[float] = []
        relay: list[float] = []
        instance: list[float] = []
        failures = 0
        gc_before = _gc_pauses((await http.get("/metrics")).text)
        cpu_before = cpu_sample(server, os.getpid())
        for n in range(args.sends):
            room_id, users = rooms[n % len(rooms)]
            await all_waiting()
            response = await http.post(f"/rooms/{room_id}/messages", json={"content": f"send {n}"}, headers=headers)
            sent_at, seq = time.monotonic(), response.json()["seq"]
            answers = await asyncio.gather(*tasks[room_id])
            for arrived, body in answers:
                events = body.get("rooms", {}).get(room_id, {}).get("events", [])
                if [e["seq"] for e in events] != [seq]:
                    failures += 1
                latencies.append(max(0.0, arrived - sent_at))
            published = on_nats.pop((room_id, seq), None)
            if published is not None:
                relay.append(max(0.0, published - sent_at))
                instance.extend(max(0.0, arrived - published) for arrived, _ in answers)
            seqs[room_id] = seq
            tasks[room_id] = arm(room_id, users)
        cpu_after = cpu_sample(server, os.getpid())
        print(f"{len(latencies)} wake-ups after {args.sends} sends, each with {total} polls waiting: "
              f"{_summary(latencies)}")
        print(f"  201 -> on NATS (relay): {_summary(relay)}")
        print(f"  on NATS -> poll answer (instance): {_summary(instance)}")
        await nc.close()
        gc_after = _gc_pauses((await http.get("/metrics")).text)
        print("garbage collections during the sends (count, seconds paused) by generation:",
              {g: (n - gc_before.get(g, (0, 0.0))[0], round(paused - gc_before.get(g, (0, 0.0))[1], 3))
               for g, (n, paused) in sorted(gc_after.items())})
        print("CPU seconds during the sends:",
              {k: round(cpu_after[k] - cpu_before[k], 2) for k in ("roomlog", "nats", "postgres", "generator")})
        for pending in tasks.values():
            for task in pending:
                task.cancel()
        if failures:
            print(f"{failures} polls did not answer with exactly their room's message", file=sys.stderr)
        return 1 if failures else 0


def _gc_pauses(metrics: str) -> dict[str, tuple[int, float]]:
    """(collections, seconds paused) by generation, from the server's roomlog_gc_pause_seconds (if it has it)."""
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for line in metrics.splitlines():
        for suffix, into in (("_count", counts), ("_sum", sums)):
            if line.startswith(f"roomlog_gc_pause_seconds{suffix}{{"):
                generation = line.split('generation="', 1)[1].split('"', 1)[0]
                into[generation] = into.get(generation, 0) + float(line.split()[-1])  # type: ignore[assignment]
    return {g: (int(counts[g]), sums.get(g, 0.0)) for g in counts}


def _nats_url(server: Server) -> str:
    """The embedded nats-server's address, from the line its log starts with."""
    log = (server.data_dir / "nats" / "nats-server.log").read_text()
    marker = "Listening for client connections on "
    return "nats://" + log[log.rindex(marker) + len(marker):].split()[0]


def _summary(latencies: list[float]) -> str:
    if not latencies:
        return "no wake-ups"
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"


if __name__ == "__main__":
    raise SystemExit(main())
