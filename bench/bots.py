"""Bot trigger latency: send a message that @mentions a bot → the bot's webhook receives the bot.triggered call.

Starts `roomlog serve` on the embedded default in a fresh data directory (webhooks may reach loopback),
creates a tenant, registers one bot whose webhook is a uvicorn server inside this process, creates rooms
with the bot and a human, then sends `--rate` messages per second (open loop: each send starts on its
schedule, whether the earlier ones answered or not), every one mentioning the bot. Prints the latency from
the start of each send to the bot receiving its delivery (p50/p90/p99/max), the same from the 201, and how
many deliveries were lost or came more than once (by X-Roomlog-Delivery).

    .venv/bin/python bench/bots.py [--rate 200] [--duration 15] [--rooms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send import NO_LIMITS, Server, _free_port, with_server  # bench/ is not a package: send.py is beside this file

BOT = "bench-bot"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a delivery was lost (a repeat of one is allowed: at least once)."""
    args = _parser().parse_args(argv)
    args.server_env = [*args.server_env, "ROOMLOG_WEBHOOK_ALLOW_PRIVATE=true"]
    return with_server(args, run, prefix="roomlog-bench-bots-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="messages per second, each mentioning the bot")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of sending (default 15)")
    p.add_argument("--rooms", type=int, default=20, help="rooms to spread the messages over (default 20)")
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
    api_key = server.create_tenant("bench-bots", NO_LIMITS)
    return asyncio.run(_run(args, f"http://127.0.0.1:{server.port}", api_key))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)] * 1000 if ordered else float("nan")


async def _run(args: argparse.Namespace, base_url: str, api_key: str) -> int:
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    received: dict[str, float] = {}
    deliveries: dict[str, int] = {}
    errors: list[str] = []
    done = asyncio.Event()
    total = int(args.rate * args.duration)

    async def hook(request: Request) -> Response:
        at = time.perf_counter()
        payload = json.loads(await request.body())
        deliveries[payload["delivery_id"]] = deliveries.get(payload["delivery_id"], 0) + 1
        received.setdefault(payload["message"]["content"], at)
        if len(received) >= total:
            done.set()
        return Response(status_code=204)

    port = _free_port()
    bot_server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
                                               host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(bot_server.serve())
    headers = {"X-API-Key": api_key, "X-User-Id": "alice"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(30.0, pool=None)  # open loop: a send waits for a connection as long as it must
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, limits=limits) as api:
        bot = {"user_id": BOT, "display_name": "Bench", "triggers": ["mention"],
               "delivery": {"webhook_url": f"http://127.0.0.1:{port}/hook"}}
        created = await api.post("/bots", headers={"X-User-Id": "admin"}, json=bot)
        if created.status_code != 201:
            raise SystemExit(f"bot registration failed: {created.text}")
        rooms = []
        for _ in range(args.rooms):
            room = await api.post("/rooms", json={"type": "group", "members": [BOT, "bob"]})
            rooms.append(room.json()["room_id"])
        await asyncio.sleep(2.5)  # the job producer's cache of the tenant's bots (2 s) learns of the new bot

        async def send(i: int) -> None:
            content = f"ping {i}" if args.no_mention else f"@{BOT} ping {i}"
            started[content] = time.perf_counter()
            try:
                answer = await api.post(f"/rooms/{rooms[i % len(rooms)]}/messages", json={"content": content})
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                return
            if answer.status_code == 201:
                answered[content] = time.perf_counter()
            else:
                errors.append(f"{answer.status_code} {answer.text[:100]}")

        begin = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = begin + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
        sent_for = time.perf_counter() - begin
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1 if args.no_mention else 30)
        await asyncio.sleep(1.0)  # time for a doubled delivery to show up
    bot_server.should_exit = True
    await serving
    latency = [received[c] - started[c] for c in received if c in started]
    after_201 = [received[c] - answered[c] for c in received if c in answered]
    lost = 0 if args.no_mention else len(answered) - len(set(received) & set(answered))
    doubled = sum(1 for n in deliveries.values() if n > 1)
    print(f"messages: {total} asked at {args.rate:g}/s over {args.rooms} rooms; sent {len(answered)} (201) in"
          f" {sent_for:.1f} s = {len(answered) / sent_for:.0f}/s")
    print("send -> bot receives, ms: " + ", ".join(f"p{q}={_pct(latency, q):.1f}" for q in (50, 90, 99)) +
          f", max={max(latency, default=0) * 1000:.1f}")
    print("201 -> bot receives, ms: " + ", ".join(f"p{q}={_pct(after_201, q):.1f}" for q in (50, 90, 99)))
    print(f"deliveries: {len(deliveries)}; lost {lost}; delivered more than once {doubled}")
    if errors:
        print(f"sends that failed: {len(errors)}, e.g. {errors[0]}")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
