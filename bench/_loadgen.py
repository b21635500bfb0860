"""A cheap closed-loop HTTP/1.1 load generator for `bench/send.py`, run in its own process.

Each connection is an asyncio Protocol that keeps one request in flight: the response is parsed in
`data_received` (status line and Content-Length only) and the next request is written from the same
callback, so a request costs no task, future or stream object. Request heads are encoded once per
(room, sender) at start-up; only the client_msg_id changes, at a fixed width, so Content-Length is constant.

Protocol with the parent: one JSON config object on stdin; on stdout the lines `warmup-done` and
`measure-done` as the phases end (the parent samples CPU counters at those moments), then one JSON result line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CONNECTION_CLOSE = b"\r\nconnection: close"
_SAMPLE_BODY_CHARS = 300


@dataclass
class Config:
    host: str
    port: int
    api_key: str
    rooms: list[dict[str, Any]]  # {"room_id": str, "members": [str, ...]}
    connections: int = 32
    warmup: float = 3.0
    duration: float = 15.0
    drain_timeout: float = 10.0
    request_timeout: float = 30.0
    run_id: str = "run"
    content: str = "hello from bench/send.py"
    seed: int = 1
    # user -> access JWT: send as end users (Authorization: Bearer) instead of API key + X-User-Id
    tokens: dict[str, str] | None = None
    # user -> a confirmed upload of theirs: every send of that user is an image message carrying it
    attachments: dict[str, str] | None = None
    # every send mentions another member of its room (and every fourth of a sender's targets `@room` too)
    mentions: bool = False


@dataclass
class Stats:
    """What every connection reports into; the clock phases decide what counts as measured."""

    measuring: bool = False
    stopping: bool = False
    latencies: list[float] = field(default_factory=list)  # seconds, measured window only
    measured_by_status: dict[int, int] = field(default_factory=dict)
    total_by_status: dict[int, int] = field(default_factory=dict)
    ok_per_room: dict[str, int] = field(default_factory=dict)  # every 201, warm-up and drain included
    error_samples: dict[int, str] = field(default_factory=dict)
    connection_errors: int = 0
    timeouts: int = 0
    in_flight: int = 0
    internal_errors: int = 0  # exceptions in our own callbacks: the numbers are not to be trusted


def _mention(cfg: Config, number: int, room: dict[str, Any], index: int) -> list[str] | None:
    """What the `index`-th member mentions in every send to the `number`-th room (with cfg.mentions): the next
    member, and in every fourth room `@room` too."""
    if not cfg.mentions:
        return None
    members = room["members"]
    named = [members[(index + 1) % len(members)]]
    return [*named, "@room"] if number % 4 == 0 else named


class _Target:
    """Pre-encoded request parts for one (room, sender)."""

    __slots__ = ("body_template", "head", "room_id")

    def __init__(self, cfg: Config, room_id: str, user_id: str, *, body_len: int | None = None,
                 mention: list[str] | None = None) -> None:
        self.room_id = room_id
        # Fixed-width ids keep every body of a sender the same length, so its head is encoded once.
        media = (cfg.attachments or {}).get(user_id)
        extra = f',"type":"image","attachments":["{media}"]' if media else ""
        if mention:
            extra += f',"mentions":{json.dumps(mention)}'
        self.body_template = (
            f'{{"content":{json.dumps(cfg.content)}{extra},"client_msg_id":"{cfg.run_id}-'.encode() + b'%03d-%09d"}'
        )
        if body_len is None:  # else the caller sends bodies of its own, all of this length
            body_len = len(self.body_template % (0, 0))
        credentials = (
            f"Authorization: Bearer {cfg.tokens[user_id]}\r\n" if cfg.tokens is not None
            else f"X-API-Key: {cfg.api_key}\r\nX-User-Id: {user_id}\r\n"
        )
        self.head = (
            f"POST /rooms/{room_id}/messages HTTP/1.1\r\n"
            f"Host: {cfg.host}:{cfg.port}\r\n"
            f"{credentials}"
            "Content-Type: application/json\r\n"
            f"Content-Length: {body_len}\r\n\r\n"
        ).encode()


class Client(asyncio.Protocol):
    """One keep-alive connection with exactly one request in flight."""

    def __init__(self, gen: Generator, number: int) -> None:
        self.gen = gen
        self.number = number
        self.counter = 0
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.target: _Target | None = None
        self.expected_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.expected_close:
            return
        gen = self.gen
        gen.stats.connection_errors += 1  # the server hung up on us
        if self.target is not None:
            self.target = None
            gen.stats.in_flight -= 1
        if gen.stats.stopping:
            gen.maybe_drained()
        else:
            gen.reconnect(self.number)

    def send_next(self) -> None:
        """Write the next request, or go idle when the run is stopping."""
        gen = self.gen
        if gen.stats.stopping or self.transport is None:
            gen.maybe_drained()
            return
        self.counter += 1
        self.target = target = gen.rng.choice(gen.targets)
        body = target.body_template % (self.number, self.counter)
        self.sent_at = time.perf_counter()
        gen.stats.in_flight += 1
        self.transport.write(target.head + body)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(_CONTENT_LENGTH)
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + len(_CONTENT_LENGTH) : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                return
            status = int(head[9:12])
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            self.response(status, body, close=_CONNECTION_CLOSE in head)
            if self.transport is None:
                return

    def response(self, status: int, body: bytes, *, close: bool) -> None:
        """Account one complete response, then send the next request (or reconnect)."""
        now = time.perf_counter()
        stats = self.gen.stats
        target = self.target
        self.target = None
        stats.in_flight -= 1
        stats.total_by_status[status] = stats.total_by_status.get(status, 0) + 1
        if status == 201 and target is not None:
            stats.ok_per_room[target.room_id] = stats.ok_per_room.get(target.room_id, 0) + 1
        elif status not in stats.error_samples:
            stats.error_samples[status] = body[:_SAMPLE_BODY_CHARS].decode(errors="replace")
        if stats.measuring:
            stats.latencies.append(now - self.sent_at)
            stats.measured_by_status[status] = stats.measured_by_status.get(status, 0) + 1
        if close:
            assert self.transport is not None
            self.expected_close = True
            self.transport.close()
            self.gen.reconnect(self.number)
            return
        self.send_next()


class Generator:
    """Runs `connections` clients through warm-up, the measured window and a drain."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.rng = random.Random(cfg.seed)
        self.targets = [_Target(cfg, room["room_id"], user, mention=_mention(cfg, r, room, i))
                        for r, room in enumerate(cfg.rooms) for i, user in enumerate(room["members"])]
        self.clients: list[Client] = []
        self.drained = asyncio.get_running_loop().create_future()

    async def connect(self, number: int) -> Client:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: Client(self, number), self.cfg.host, self.cfg.port)
        return client

    def reconnect(self, number: int) -> None:
        async def again() -> None:
            try:
                client = await self.connect(number)
            except OSError:
                self.stats.connection_errors += 1
                await asyncio.sleep(0.1)
                asyncio.get_running_loop().create_task(again())
                return
            self.clients[number] = client
            client.send_next()

        asyncio.get_running_loop().create_task(again())

    def maybe_drained(self) -> None:
        if self.stats.stopping and self.stats.in_flight <= 0 and not self.drained.done():
            self.drained.set_result(None)

    def check_timeouts(self) -> None:
        now = time.perf_counter()
        for client in self.clients:
            if client.target is not None and now - client.sent_at > self.cfg.request_timeout:
                self.stats.timeouts += 1
                client.target = None
                self.stats.in_flight -= 1
                client.expected_close = True
                if client.transport is not None:
                    client.transport.abort()
                if self.stats.stopping:
                    self.maybe_drained()
                else:
                    self.reconnect(client.number)
        asyncio.get_running_loop().call_later(1.0, self.check_timeouts)

    def on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.stats.internal_errors += 1
        loop.default_exception_handler(context)

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        asyncio.get_running_loop().set_exception_handler(self.on_loop_error)
        self.clients = list(await asyncio.gather(*(self.connect(n) for n in range(cfg.connections))))
        asyncio.get_running_loop().call_later(1.0, self.check_timeouts)
        started = time.perf_counter()
        for client in self.clients:
            client.send_next()

        await asyncio.sleep(cfg.warmup)
        _emit("warmup-done")
        cpu_start = _cpu_seconds()
        self.stats.measuring = True
        window_start = time.perf_counter()

        await asyncio.sleep(cfg.duration)
        self.stats.measuring = False
        window = time.perf_counter() - window_start
        cpu_window = _cpu_seconds() - cpu_start
        _emit("measure-done")

        self.stats.stopping = True
        self.maybe_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.drained), cfg.drain_timeout)
        unfinished = self.stats.in_flight
        for client in self.clients:
            client.expected_close = True
            if client.transport is not None:
                client.transport.close()
        return self.result(window, cpu_window, time.perf_counter() - started, unfinished)

    def result(self, window: float, cpu_window: float, wall: float, unfinished: int) -> dict[str, Any]:
        stats = self.stats
        ok = stats.measured_by_status.get(201, 0)
        return {
            "window_seconds": window,
            "wall_seconds": wall,
            "measured_ok": ok,
            "measured_responses": sum(stats.measured_by_status.values()),
            "sends_per_second": ok / window if window else 0.0,
            "latency_ms": latency_summary(stats.latencies),
            "measured_by_status": {str(k): v for k, v in sorted(stats.measured_by_status.items())},
            "total_by_status": {str(k): v for k, v in sorted(stats.total_by_status.items())},
            "ok_per_room": stats.ok_per_room,
            "error_samples": {str(k): v for k, v in stats.error_samples.items()},
            "connection_errors": stats.connection_errors,
            "timeouts": stats.timeouts,
            "unfinished": unfinished,
            "internal_errors": stats.internal_errors,
            "generator_cpu_seconds": cpu_window,
            "generator_cpu_percent": 100.0 * cpu_window / window if window else 0.0,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max and mean of latencies (seconds in, milliseconds out)."""
    if not latencies:
        return {}
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, max(0, round(p / 100 * n + 0.5) - 1))] * 1000

    return {
        "p50": pct(50), "p90": pct(90), "p99": pct(99), "p99.9": pct(99.9),
        "max": ordered[-1] * 1000, "mean": sum(ordered) / n * 1000,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    """Read the config from stdin, run the load, print the result as one JSON line."""
    cfg = Config(**json.loads(sys.stdin.read()))
    try:
        import uvloop  # the service's own event loop; falls back to asyncio's when absent
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run

    async def go() -> dict[str, Any]:
        return await Generator(cfg).run()

    _emit(json.dumps(runner(go())))


if __name__ == "__main__":
    main()
