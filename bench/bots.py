"""Bot trigger latency: send a message that @mentions a bot → the bot's webhook receives the bot.triggered call.

Starts `roomlog serve` on the embedded default in a fresh data directory (webhooks may reach loopback),
creates a tenant, registers one bot whose webhook is a uvicorn server in a process of its own, creates rooms
with the bot and a human, then sends `--rate` messages per second from `--generators` processes (open loop:
each send starts on its schedule, whether the earlier ones answered or not), every one mentioning the bot.
The bench process only coordinates, so neither the sends nor the receiving bot compete with it for an event
loop. Prints the latency from the start of each send to the bot receiving its delivery (p50/p90/p99/max; one
monotonic clock for every process), the same from the 201, and how many deliveries were lost or came more
than once (by X-Roomlog-Delivery).

    .venv/bin/python bench/bots.py [--rate 200] [--duration 15] [--rooms 20] [--generators 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import socket
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is not a package: send.py is beside this file
from send import (
    NO_LIMITS,
    Server,
    _free_port,
    cpu_sample,
    enable_statement_stats,
    print_statement_stats,
    statement_stats,
    with_server,
)

BOT = "bench-bot"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a delivery was lost or came more than once."""
    args = _parser().parse_args(argv)
    args.server_env = [*args.server_env, "ROOMLOG_WEBHOOK_ALLOW_PRIVATE=true"]
    return with_server(args, run, prefix="roomlog-bench-bots-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="messages per second, each mentioning the bot")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of sending (default 15)")
    p.add_argument("--rooms", type=int, default=20, help="rooms to spread the messages over (default 20)")
    p.add_argument("--pg-statements", type=int, default=0, metavar="N",
                   help="pg_stat_statements over the sends (as bench/send.py): the N with the most execution time")
    p.add_argument("--generators", type=int, default=2, help="load generator processes (default 2)")
    p.add_argument("--no-mention", action="store_true",
                   help="send without mentioning the bot (no deliveries): the send path alone at the same rate")
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server (repeatable)")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    return p


def run(args: argparse.Namespace, server: Server) -> int:
    """Drive the sends and print the report."""
    if args.pg_statements:
        enable_statement_stats(server)
    api_key = server.create_tenant("bench-bots", NO_LIMITS)
    return _run(args, server, api_key)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)] * 1000 if ordered else float("nan")


# --- the bot: a webhook receiver in its own process ---------------------------------------------------


def _receiver(port: int, ready: Event, stop: Event, count: Synchronized[int], out: Queue[Any]) -> None:
    """Serve POST /hook until `stop`; then put {content: first arrival} and {delivery_id: arrivals} on `out`."""
    received: dict[str, float] = {}
    deliveries: dict[str, int] = {}

    async def hook(request: Request) -> Response:
        at = time.monotonic()
        payload = json.loads(await request.body())
        deliveries[payload["delivery_id"]] = deliveries.get(payload["delivery_id"], 0) + 1
        if received.setdefault(payload["message"]["content"], at) == at:
            count.value += 1
        return Response(status_code=204)

    async def serve() -> None:
        server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
                                               host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        # Listening before serve(): deliveries that come early wait in the backlog.
        sock = socket.create_server(("127.0.0.1", port), backlog=1024)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        server.should_exit = True
        await serving

    _fast_loop()
    asyncio.run(serve())
    out.put({"received": received, "deliveries": deliveries})


# --- the load: open-loop senders in processes of their own ---------------------------------------------


def _generator(config: dict[str, Any], out: Queue[Any]) -> None:
    """Send messages number index, index + n, … each at begin + i / rate; put what happened on `out`."""
    _fast_loop()
    out.put(asyncio.run(_send_all(config)))


async def _send_all(config: dict[str, Any]) -> dict[str, Any]:
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    errors: list[str] = []
    rooms, rate, mention = config["rooms"], config["rate"], config["mention"]
    headers = {"X-API-Key": config["api_key"], "X-User-Id": "alice"}
    # aiohttp, not httpx: at 200 sends/s httpx's ~2.4 ms of CPU per request starved the service of its core.
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(config["base_url"], headers=headers, timeout=timeout,
                                     connector=connector) as api:

        async def send(i: int) -> None:
            content = f"@{BOT} ping {i}" if mention else f"ping {i}"
            started[content] = time.monotonic()
            try:
                async with api.post(f"/rooms/{rooms[i % len(rooms)]}/messages", json={"content": content}) as answer:
                    text = await answer.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(repr(exc))
                return
            if answer.status == 201:
                answered[content] = time.monotonic()
            else:
                errors.append(f"{answer.status} {text[:100]}")

        tasks = []
        late = 0.0
        for i in range(config["index"], config["total"], config["generators"]):
            delay = config["begin"] + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
    return {"started": started, "answered": answered, "errors": errors, "most_late_s": late}


def _fast_loop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- the run --------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, server: Server, api_key: str) -> int:
    base_url = f"http://127.0.0.1:{server.port}"
    mp = multiprocessing.get_context("spawn")
    total = int(args.rate * args.duration)
    port = _free_port()
    ready, stop, count, results = mp.Event(), mp.Event(), mp.Value("i", 0), mp.Queue()
    bot = mp.Process(target=_receiver, args=(port, ready, stop, count, results), daemon=True)
    bot.start()
    if not ready.wait(30):
        raise SystemExit("the bot's webhook server did not start")
    rooms = asyncio.run(_set_up(base_url, api_key, port, args.rooms))
    time.sleep(2.5)  # the job producer's cache of the tenant's bots (2 s) learns of the new bot
    load_before = os.getloadavg()[0]
    outputs: Queue[Any] = mp.Queue()
    begin = time.monotonic() + 1.0  # every generator is up and connected by then
    config = {"base_url": base_url, "api_key": api_key, "rooms": rooms, "rate": args.rate, "total": total,
              "generators": args.generators, "begin": begin, "mention": not args.no_mention}
    generators = [mp.Process(target=_generator, args=({**config, "index": g}, outputs), daemon=True)
                  for g in range(args.generators)]
    for g in generators:
        g.start()
    if args.pg_statements:
        statement_stats(server, 0)
    cpu_before, wall_before = cpu_sample(server, os.getpid()), time.monotonic()
    parts = [outputs.get() for _ in generators]
    for g in generators:
        g.join()
    sent_for = max((max(p["answered"].values(), default=begin) for p in parts), default=begin) - begin
    started = {c: t for p in parts for c, t in p["started"].items()}
    answered = {c: t for p in parts for c, t in p["answered"].items()}
    errors = [e for p in parts for e in p["errors"]]
    wait_until = time.monotonic() + (1 if args.no_mention else 30)
    while count.value < len(answered) and time.monotonic() < wait_until:
        time.sleep(0.05)
    cpu_after, wall = cpu_sample(server, os.getpid()), time.monotonic() - wall_before
    statements = statement_stats(server, args.pg_statements) if args.pg_statements else []
    time.sleep(1.0)  # time for a doubled delivery to show up
    load_after = os.getloadavg()[0]
    stop.set()
    seen = results.get(timeout=30)
    bot.join()
    received, deliveries = seen["received"], seen["deliveries"]
    latency = [received[c] - started[c] for c in received if c in started]
    after_201 = [received[c] - answered[c] for c in received if c in answered]
    lost = 0 if args.no_mention else len(answered) - len(set(received) & set(answered))
    doubled = sum(1 for n in deliveries.values() if n > 1)
    late = max(p["most_late_s"] for p in parts)
    print(f"messages: {total} asked at {args.rate:g}/s over {args.rooms} rooms from {args.generators} generator"
          f" processes; sent {len(answered)} (201) in {sent_for:.1f} s = {len(answered) / max(sent_for, 1e-9):.0f}/s;"
          f" the latest send started {late * 1000:.0f} ms after its schedule")
    print("send -> bot receives, ms: " + ", ".join(f"p{q}={_pct(latency, q):.1f}" for q in (50, 90, 99)) +
          f", max={max(latency, default=0) * 1000:.1f}")
    print("201 -> bot receives, ms: " + ", ".join(f"p{q}={_pct(after_201, q):.1f}" for q in (50, 90, 99)))
    print(f"deliveries: {len(deliveries)}; lost {lost}; delivered more than once {doubled}")
    print(f"loadavg {load_before:.2f} before the sends, {load_after:.2f} after")
    cores = {k: (cpu_after[k] - cpu_before[k]) / wall for k in ("roomlog", "postgres", "nats", "machine")}
    per_message = {k: (cpu_after[k] - cpu_before[k]) / max(len(answered), 1) * 1e6 for k in ("roomlog", "postgres")}
    print(f"cpu (cores) from the first send to the last delivery ({wall:.1f} s): roomlog {cores['roomlog']:.2f}"
          f" (with its embedded servers but NATS), postgres {cores['postgres']:.2f}, nats {cores['nats']:.2f},"
          f" machine {cores['machine']:.2f} of {os.cpu_count()}; per message: roomlog {per_message['roomlog']:.0f} us,"
          f" postgres {per_message['postgres']:.0f} us")
    if statements:
        print_statement_stats(statements, len(answered))
    if errors:
        print(f"sends that failed: {len(errors)}, e.g. {errors[0]}")
    return 1 if lost or doubled else 0


async def _set_up(base_url: str, api_key: str, port: int, room_count: int) -> list[str]:
    """Register the bot (its webhook the receiver's /hook) and create the rooms; their ids."""
    headers = {"X-API-Key": api_key, "X-User-Id": "alice"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api:
        bot = {"user_id": BOT, "display_name": "Bench", "triggers": ["mention"],
               "delivery": {"webhook_url": f"http://127.0.0.1:{port}/hook"}}
        created = await api.post("/bots", headers={"X-User-Id": "admin"}, json=bot)
        if created.status_code != 201:
            raise SystemExit(f"bot registration failed: {created.text}")
        rooms = []
        for _ in range(room_count):
            room = await api.post("/rooms", json={"type": "group", "members": [BOT, "bob"]})
            rooms.append(room.json()["room_id"])
        return rooms


if __name__ == "__main__":
    raise SystemExit(main())
