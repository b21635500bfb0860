"""Presence at scale: per-instance CPU and NATS traffic with 5,000 to 50,000 online users over 2 instances.

Starts nats-server (JetStream) and PostgreSQL (both embedded) in a fresh directory, then for each size N
runs two instance processes, each serving N/2 users with an open WebSocket (service/realtime/presence.py's
`Presence`, the class the service runs, with its default 10 s flush). Users sit in rooms of --room-size
members drawn over all N users, so each instance watches (subscribes to `rlp.<tenant>.<user>` of, as the hub
does) every room mate of its users. Load per instance: each served user makes an authenticated call every
--call-seconds on average, --churn of them per minute reconnect (a tab reload), and --choose of them per minute
choose a status (what PUT /presence tells). Once each of its users was told online and --warmup seconds more
passed, the instance measures --duration seconds:
its CPU (process time), NATS messages and bytes in and out (the client's counters), and the nats-server's CPU.

    .venv/bin/python bench/presence.py [--sizes 5000,10000,25000,50000] [--room-size 10] [--duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import nats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from projections.presence import PresenceStatusesProjection  # noqa: E402 (after the path is set)
from service.cli.embedded import EmbeddedPostgres, NatsServer  # noqa: E402
from service.realtime.jetstream import user_presence_subject  # noqa: E402
from service.realtime.presence import Presence  # noqa: E402

TENANT = "tn_bench"


def main() -> int:
    args = _parser().parse_args()
    if args.instance is not None:
        return asyncio.run(_instance(args))
    base = Path(tempfile.mkdtemp(prefix="roomlog-presence-bench-"))
    nats_server = NatsServer(base / "nats")
    nats_server.start()
    pg = EmbeddedPostgres(base / "pg")
    url = pg.start()
    try:
        asyncio.run(_prepare(url))
        rows = [_run_size(args, n, nats_server, url) for n in (int(s) for s in args.sizes.split(","))]
        _report(rows)
    finally:
        nats_server.stop()
        pg.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="5000,10000,25000,50000", help="online users over both instances")
    p.add_argument("--room-size", type=int, default=10, help="members per room (default 10)")
    p.add_argument("--rooms-per-user", type=int, default=2, help="rooms each user is in (default 2)")
    p.add_argument("--call-seconds", type=float, default=30.0, help="mean seconds between a user's calls")
    p.add_argument("--churn", type=float, default=0.01, help="share of users reconnecting per minute")
    p.add_argument("--choose", type=float, default=0.01, help="share of users choosing a status per minute")
    p.add_argument("--warmup", type=float, default=12.0)
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds (a multiple of the 10 s flush)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--instance", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--nats", default="", help=argparse.SUPPRESS)
    p.add_argument("--db", default="", help=argparse.SUPPRESS)
    return p


async def _prepare(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS presence_statuses")
        await conn.execute(PresenceStatusesProjection.ddl)
    finally:
        await conn.close()


def _run_size(args: argparse.Namespace, n: int, nats_server: NatsServer, url: str) -> dict[str, Any]:
    server_pid = _nats_pid(nats_server)
    flags = ["--users", str(n), "--nats", nats_server.url, "--db", url, "--room-size", str(args.room_size),
             "--rooms-per-user", str(args.rooms_per_user), "--call-seconds", str(args.call_seconds),
             "--churn", str(args.churn), "--choose", str(args.choose), "--warmup", str(args.warmup),
             "--duration", str(args.duration), "--seed", str(args.seed)]
    # Each child's output goes to a file: a pipe read only at the end would fill up and stall the child.
    with contextlib.ExitStack() as stack:
        outputs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(2)]
        children = [subprocess.Popen([sys.executable, __file__, "--instance", str(i), *flags], stdout=outputs[i],
                                     stderr=subprocess.STDOUT, text=True) for i in range(2)]
        time.sleep(args.warmup)  # the children connect their users first; the server is sampled from here on
        server_before = _cpu_of(server_pid)
        t0 = time.monotonic()
        for child in children:
            child.wait()
        server_cpu = (_cpu_of(server_pid) - server_before) / (time.monotonic() - t0)
        outs = []
        for output in outputs:
            output.seek(0)
            lines = output.read().strip().splitlines()
            results = [line for line in lines if line.startswith('{"settle_seconds"')]
            logged = [line for line in lines if line.strip() and line not in results]
            if logged:
                print(f"{n:,} users: an instance logged {len(logged)} lines, the first: {logged[0][:200]}")
            outs.append(json.loads(results[-1]))
    return {"users": n, "instances": outs, "nats_server_cpu": server_cpu}


def _report(rows: list[dict[str, Any]]) -> None:
    head = ("users", "served/inst", "watched/inst", "cpu/inst", "msgs in/s", "msgs out/s", "KB in/s", "KB out/s",
            "published/s", "nats-server cpu*", "settle s")
    print(" | ".join(head))
    for row in rows:
        inst = row["instances"]

        def avg(key: str, inst: list[dict[str, Any]] = inst) -> float:
            return sum(float(i[key]) for i in inst) / len(inst)

        print(" | ".join([
            f"{row['users']:,}", f"{avg('served'):,.0f}", f"{avg('watched'):,.0f}", f"{avg('cpu'):.3f}",
            f"{avg('in_msgs'):,.0f}", f"{avg('out_msgs'):,.0f}", f"{avg('in_bytes') / 1024:,.1f}",
            f"{avg('out_bytes') / 1024:,.1f}", f"{avg('published'):,.1f}", f"{row['nats_server_cpu']:.3f}",
            f"{avg('settle_seconds'):.1f}",
        ]))
    print("cpu: cores busy (process seconds per second) of one instance, averaged over both; per second values "
          "over the measured window only (after every user's first status was told, then --warmup). *nats-server "
          "from --warmup after the start to the end (part of the connect burst included). settle: seconds until an "
          "instance's users were all connected and told online.")


# --- one instance --------------------------------------------------------------------------------------


async def _instance(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    n, me = args.users, args.instance
    users = [f"u{i}" for i in range(n)]
    rooms: list[list[str]] = []
    for _ in range(n * args.rooms_per_user // args.room_size):  # rooms over all users, the same in both processes
        rooms.append(rng.sample(users, args.room_size))
    mine = users[me::2]
    mine_set = set(mine)
    watched = {u for room in rooms if not mine_set.isdisjoint(room) for u in room}
    nc = await nats.connect(args.nats)
    pool = await asyncpg.create_pool(args.db, min_size=1, max_size=4)
    assert pool is not None
    presence = Presence(pool)
    await presence.start(nc)
    received = 0

    async def on_presence(msg: Any) -> None:
        nonlocal received
        received += 1

    for user_id in watched:
        await nc.subscribe(user_presence_subject(TENANT, user_id), cb=on_presence)
    for chunk in range(0, len(mine), 500):
        await asyncio.gather(*(presence.connected(TENANT, u) for u in mine[chunk:chunk + 500]))
    await nc.flush()
    began = time.monotonic()
    settled = began + 300
    # Until each user's first "online" was told: polls the counter Presence's flush loop advances.
    while presence.published < len(mine) and time.monotonic() < settled:  # noqa: ASYNC110 (no event to await)
        await asyncio.sleep(0.2)
    settle = time.monotonic() - began
    load = asyncio.create_task(_load(presence, mine, args, random.Random(args.seed + me + 1)))
    await asyncio.sleep(args.warmup)
    before = (time.process_time(), dict(nc.stats), presence.published, received, time.monotonic())
    await asyncio.sleep(args.duration)
    after = (time.process_time(), dict(nc.stats), presence.published, received, time.monotonic())
    load.cancel()
    with contextlib.suppress(BaseException):
        await load
    elapsed = after[4] - before[4]
    result = {"settle_seconds": settle, "served": len(mine), "watched": len(watched),
              "cpu": (after[0] - before[0]) / elapsed, "published": (after[2] - before[2]) / elapsed,
              "received": (after[3] - before[3]) / elapsed}
    for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        result[key] = (after[1][key] - before[1][key]) / elapsed
    print(json.dumps(result), flush=True)  # before the shutdown: a shutdown that hangs must not lose the numbers
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            await presence.stop()
            await nc.close()
            await pool.close()
    return 0


async def _load(presence: Presence, mine: list[str], args: argparse.Namespace, rng: random.Random) -> None:
    """Calls, reconnects and status choices at the configured rates, in ticks of 100 ms."""
    tick = 0.1
    calls, churn, choose = (len(mine) * tick / args.call_seconds, len(mine) * args.churn * tick / 60,
                            len(mine) * args.choose * tick / 60)
    carry = [0.0, 0.0, 0.0]
    while True:
        carry = [carry[0] + calls, carry[1] + churn, carry[2] + choose]
        for _ in range(int(carry[0])):
            presence.seen(TENANT, rng.choice(mine))
        for _ in range(int(carry[1])):
            user_id = rng.choice(mine)
            await presence.disconnected(TENANT, user_id)
            await presence.connected(TENANT, user_id)
        for _ in range(int(carry[2])):
            await presence.tell(TENANT, rng.choice(mine))  # what PUT /presence does after appending its event
        carry = [c - int(c) for c in carry]
        await asyncio.sleep(tick)


def _nats_pid(server: NatsServer) -> int | None:
    proc = getattr(server, "_proc", None)
    return None if proc is None else int(proc.pid)


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) the process used so far, from /proc."""
    if pid is None or not os.path.exists(f"/proc/{pid}/stat"):
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
