"""The load processes of `bench/fanout.py`: paced HTTP senders, lean WebSocket receivers, and a resume timer.

    python bench/_wsload.py send      # paced POST /rooms/{id}/messages (meta.t = send time), bench/_loadgen.py's client
    python bench/_wsload.py fill      # the same, as fast as the connections go, until `count` 201s
    python bench/_wsload.py receive   # W WebSocket clients: sync their rooms, check seq order, measure latency
    python bench/_wsload.py resume    # one client syncs a room from seq 0 and times the catch-up

Protocol with the parent: one JSON config line on stdin; lines on stdout (`warmup-done`, `measure-done`,
`ready`) mark phases; the last stdout line is the JSON result. `receive` then waits for a second stdin
line `{"window": [t0, t1], "expect": {room_id: last_seq}}` before it drains and reports.

The receivers are a hand-written asyncio Protocol rather than a WebSocket library: a server frame is
parsed from its 2-10 byte header in `data_received`, JSON-decoded into a small msgspec Struct (only the
fields we look at), and checked against the connection's last seq of the room — a few microseconds per
event, so one process can take 10,000+ deliveries/s without starving the server of CPU. Compression
(permessage-deflate, what browsers offer) is negotiated unless `deflate` is false.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
import zlib
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from _loadgen import Client, Config, Generator, _cpu_seconds, _emit, _Target, latency_summary

# --- senders --------------------------------------------------------------------------------------------


@dataclass
class PacedConfig(Config):
    rate: float = 1000.0  # messages per second over all connections; 0 = as fast as they go
    count: int = 0  # `fill`: stop after this many 201s


class PacedClient(Client):
    """A keep-alive connection that sends when the schedule says so, not as soon as it is free."""

    gen: PacedGenerator

    def send_next(self) -> None:
        gen = self.gen
        if gen.stats.stopping or self.transport is None:
            gen.maybe_drained()
            return
        gen.idle.append(self)
        gen.dispatch()

    def fire(self) -> None:
        """Write one request now, its body stamped with the send time (epoch seconds, fixed width)."""
        gen = self.gen
        assert self.transport is not None
        self.counter += 1
        self.target = target = gen.rng.choice(gen.targets)
        self.sent_at = time.perf_counter()
        body = gen.body_template % (self.number, self.counter, b"%.6f" % time.time())
        gen.stats.in_flight += 1
        self.transport.write(target.head + body)


class PacedGenerator(Generator):
    """bench/_loadgen.py's generator, open loop: requests leave at `rate`, spread over idle connections."""

    cfg: PacedConfig

    def __init__(self, cfg: PacedConfig) -> None:
        super().__init__(cfg)
        self.body_template = (
            f'{{"content":{json.dumps(cfg.content)},"client_msg_id":"{cfg.run_id}-'.encode()
            + b'%03d-%09d","meta":{"t":%s}}'
        )
        body_len = len(self.body_template % (0, 0, b"%.6f" % time.time()))
        self.targets = [
            _Target(cfg, room["room_id"], user, body_len=body_len) for room in cfg.rooms for user in room["members"]
        ]
        self.idle: deque[PacedClient] = deque()
        self.fired = 0
        self.started_at = 0.0
        self.most_owed = 0  # the largest backlog of due sends without a free connection
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def connect(self, number: int) -> Client:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: PacedClient(self, number), self.cfg.host, self.cfg.port)
        return client

    def owed(self) -> int:
        """Sends the schedule wants out by now that have not left yet."""
        cfg = self.cfg
        if cfg.count and self.fired >= cfg.count:
            return 0
        if cfg.rate <= 0:
            return 1
        return int((time.perf_counter() - self.started_at) * cfg.rate) - self.fired

    def dispatch(self) -> None:
        if not self.started_at:
            self.started_at = time.perf_counter()
        owed = self.owed()
        if owed > 1 and not self.idle:
            self.most_owed = max(self.most_owed, owed)
        while self.idle and owed > 0 and not self.stats.stopping:
            client = self.idle.popleft()
            if client.transport is None or client.target is not None:
                continue
            client.fire()
            self.fired += 1
            owed -= 1
        if self.cfg.count and not self.done.done() and self.stats.total_by_status.get(201, 0) >= self.cfg.count:
            self.done.set_result(None)

    def tick(self) -> None:
        if self.stats.stopping:
            return
        self.dispatch()
        asyncio.get_running_loop().call_later(0.001, self.tick)

    async def run(self) -> dict[str, Any]:
        asyncio.get_running_loop().call_soon(self.tick)
        result = await super().run()
        result["most_owed"] = self.most_owed
        return result

    async def fill(self) -> dict[str, Any]:
        """Send until `count` messages were stored; the time it took."""
        started = time.perf_counter()
        self.clients = list(await asyncio.gather(*(self.connect(n) for n in range(self.cfg.connections))))
        for client in self.clients:
            client.send_next()
        await self.done
        self.stats.stopping = True
        for client in self.clients:
            client.expected_close = True
            if client.transport is not None:
                client.transport.close()
        return {"stored": self.stats.total_by_status.get(201, 0), "seconds": time.perf_counter() - started,
                "by_status": {str(k): v for k, v in self.stats.total_by_status.items()}}


# --- a lean WebSocket client ----------------------------------------------------------------------------


class _Meta(msgspec.Struct):
    t: float = 0.0


class _Data(msgspec.Struct):
    meta: _Meta | None = None


class _Frame(msgspec.Struct):
    """The fields of a server frame the receivers look at; everything else is skipped by the decoder."""

    type: str
    room_id: str | None = None
    seq: int | None = None
    data: _Data | None = None
    code: str | None = None
    events: list[_Frame] | None = None  # an events.batch frame's event frames


_decode_frame = msgspec.json.Decoder(_Frame).decode
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


class WsProtocol(asyncio.Protocol):
    """One client socket: the upgrade handshake, then server frames parsed straight from the byte stream."""

    def __init__(self, conn: Conn, host: str, port: int, *, deflate: bool) -> None:
        self.conn = conn
        self.host, self.port = host, port
        self.offer_deflate = deflate
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.inflater: Any = None
        self.fragments: list[bytes] = []
        self.compressed = False
        self.close_code: int | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = out = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.offer_deflate else ""
        )
        out.write(
            f"GET /ws?token={self.conn.token} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        self.conn.closed(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open and not self._handshake():
            return
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            end = pos + n
            if len(buf) < end:
                return
            payload = bytes(buf[pos:end])
            del buf[:end]
            self._frame(b0, payload)

    def _handshake(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).decode("latin-1").lower()
        del self.buf[: end + 4]
        if not head.startswith("http/1.1 101"):
            self.opened.set_exception(ConnectionError(head.split("\r\n", 1)[0]))
            if self.transport is not None:
                self.transport.close()
            return False
        if "permessage-deflate" in head:
            self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.open = True
        self.opened.set_result(None)
        return True

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode in (0x1, 0x2):
            self.compressed = bool(b0 & 0x40)
            self.fragments = [payload]
        elif opcode == 0x0:
            self.fragments.append(payload)
        elif opcode == 0x9:
            self.send_frame(0xA, payload)
            return
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            with contextlib.suppress(Exception):
                self.send_frame(0x8, payload[:2])
            if self.transport is not None:
                self.transport.close()
            return
        else:
            return
        if not b0 & 0x80:
            return
        message = self.fragments[0] if len(self.fragments) == 1 else b"".join(self.fragments)
        self.fragments = []
        if self.compressed:
            message = self.inflater.decompress(message + _DEFLATE_TAIL)
        self.conn.receiver.on_message(self.conn, message)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """A masked client frame (every client frame must be masked)."""
        if self.transport is None:
            return
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        mask = os.urandom(4)
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.transport.write(head + mask + masked)

    def send_json(self, frame: dict[str, Any]) -> None:
        self.send_frame(0x1, json.dumps(frame, separators=(",", ":")).encode())


@dataclass
class Conn:
    """One receiving user: its token, its rooms with the last seq it has, and its current socket."""

    receiver: Receiver
    user_id: str
    token: str
    have: dict[str, int]
    proto: WsProtocol | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def closed(self, proto: WsProtocol) -> None:
        if proto is self.proto:
            self.proto = None
            self.receiver.on_close(self, proto.close_code)


class Receiver:
    """W lean clients in one process; counts deliveries, duplicates and gaps, and keeps latency samples."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.conns = [Conn(self, u["user_id"], u["token"], dict(u["rooms"])) for u in cfg["users"]]
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0
        self.missing_in_gaps = 0
        self.resyncs = 0
        self.reconnects = 0
        self.errors: list[str] = []
        self.close_codes: dict[int, int] = {}
        self.sent_at = array("d")  # meta.t of each delivered message
        self.latency = array("d")  # receive time - meta.t, seconds
        self.stopping = False
        self.watch: tuple[str, int, asyncio.Event] | None = None  # (room, seq, set once some client has it)

    async def connect(self, conn: Conn) -> None:
        loop = asyncio.get_running_loop()
        host, port, deflate = self.cfg["host"], self.cfg["port"], self.cfg.get("deflate", True)
        _, proto = await loop.create_connection(lambda: WsProtocol(conn, host, port, deflate=deflate), host, port)
        await proto.opened
        conn.proto = proto
        conn.synced.clear()
        proto.send_json({"type": "sync", "rooms": conn.have, "batch": bool(self.cfg.get("batch", False))})

    def on_message(self, conn: Conn, raw: bytes) -> None:
        now = time.time()
        frame = _decode_frame(raw)
        if frame.type == "events.batch":
            for event in frame.events or ():
                self.on_frame(conn, event, raw, now)
            return
        self.on_frame(conn, frame, raw, now)

    def on_frame(self, conn: Conn, frame: _Frame, raw: bytes, now: float) -> None:
        seq = frame.seq
        if seq is not None and frame.room_id is not None and frame.type != "ack.received":
            room = frame.room_id
            last = conn.have.get(room, 0)
            if seq <= last:
                self.duplicates += 1
                return
            if seq > last + 1:
                self.gaps += 1
                self.missing_in_gaps += seq - last - 1
            conn.have[room] = seq
            if self.watch is not None and room == self.watch[0] and seq >= self.watch[1]:
                self.watch[2].set()
            if frame.type == "message.new":
                self.delivered += 1
                data = frame.data
                if data is not None and data.meta is not None and data.meta.t:
                    self.sent_at.append(data.meta.t)
                    self.latency.append(now - data.meta.t)
        elif frame.type == "synced":
            conn.synced.set()
        elif frame.type == "resync":
            self.resyncs += 1
        elif frame.type == "error" and len(self.errors) < 20:
            self.errors.append(raw.decode(errors="replace")[:300])

    def on_close(self, conn: Conn, code: int | None) -> None:
        self.close_codes[code or 1006] = self.close_codes.get(code or 1006, 0) + 1
        if not self.stopping:
            # What a real client does: reconnect and sync from what it has (after a resync, a restart, ...).
            self.reconnects += 1
            asyncio.get_running_loop().create_task(self._reconnect(conn))

    async def _reconnect(self, conn: Conn) -> None:
        for _ in range(50):
            await asyncio.sleep(0.1)
            with contextlib.suppress(OSError, ConnectionError):
                await self.connect(conn)
                return

    async def start(self) -> None:
        """Connect everyone (a few at a time) and wait until every sync is answered."""
        gate = asyncio.Semaphore(50)

        async def one(conn: Conn) -> None:
            async with gate:
                await self.connect(conn)
                await conn.synced.wait()

        await asyncio.gather(*(one(c) for c in self.conns))

    async def drain(self, expect: dict[str, int], seconds: float) -> float:
        """Wait until every connection has each of its rooms up to `expect`; seconds waited."""
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            if all(c.have.get(r, 0) >= expect.get(r, 0) for c in self.conns for r in c.have):
                break
            await asyncio.sleep(0.02)
        return time.perf_counter() - started

    def result(self, window: tuple[float, float], expect: dict[str, int], drained: float) -> dict[str, Any]:
        t0, t1 = window
        in_window = [lat for t, lat in zip(self.sent_at, self.latency, strict=True) if t0 <= t < t1]
        lost = sum(max(0, expect.get(r, 0) - seq) for c in self.conns for r, seq in c.have.items())
        return {
            "connections": len(self.conns),
            "delivered": self.delivered,
            "delivered_in_window": len(in_window),
            "window_seconds": t1 - t0,
            "latency_ms": latency_summary(in_window),
            "lost": lost + self.missing_in_gaps,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "reconnects": self.reconnects,
            "close_codes": {str(k): v for k, v in self.close_codes.items()},
            "errors": self.errors,
            "drain_seconds": drained,
            "cpu_seconds": _cpu_seconds(),
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }

    async def close(self) -> None:
        self.stopping = True
        for conn in self.conns:
            if conn.proto is not None and conn.proto.transport is not None:
                conn.proto.transport.close()


async def receive(cfg: dict[str, Any]) -> dict[str, Any]:
    receiver = Receiver(cfg)
    await receiver.start()
    _emit("ready")
    command = json.loads(await asyncio.to_thread(sys.stdin.readline))
    expect = command["expect"]
    drained = await receiver.drain(expect, float(cfg.get("drain_seconds", 15.0)))
    t0, t1 = command["window"]
    result = receiver.result((t0, t1), expect, drained)
    await receiver.close()
    return result


async def resume(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time `runs` catch-ups of one room from seq 0: handshake, sync, until its last event arrived."""
    runs = []
    # Alternately one frame per event and events.batch frames, so both are measured at the same moment.
    for batch in [False, True] * int(cfg.get("runs", 3)):
        receiver = Receiver({**cfg, "batch": batch,
                             "users": [{"user_id": "resumer", "token": cfg["token"], "rooms": {}}]})
        conn = receiver.conns[0]
        conn.have[cfg["room_id"]] = 0
        caught_up = asyncio.Event()
        receiver.watch = (cfg["room_id"], cfg["expect_last"], caught_up)
        started = time.perf_counter()
        await receiver.connect(conn)
        synced_at = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(caught_up.wait(), 30)
        done = time.perf_counter()
        runs.append({"batch": batch, "seconds": done - synced_at, "with_handshake": done - started,
                     "events": conn.have[cfg["room_id"]], "duplicates": receiver.duplicates,
                     "missing": receiver.missing_in_gaps})
        await receiver.close()
    return {"runs": runs, "expect_last": cfg["expect_last"], "cpu_seconds": _cpu_seconds()}


async def send(cfg: dict[str, Any]) -> dict[str, Any]:
    return await PacedGenerator(PacedConfig(**cfg)).run()


async def fill(cfg: dict[str, Any]) -> dict[str, Any]:
    return await PacedGenerator(PacedConfig(**{**cfg, "rate": 0.0})).fill()


MODES = {"send": send, "fill": fill, "receive": receive, "resume": resume}


def main() -> None:
    """`python bench/_wsload.py MODE`: read the config line from stdin, run, print the result as JSON."""
    mode = MODES[sys.argv[1]]
    cfg = json.loads(sys.stdin.readline())
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    _emit(json.dumps(runner(mode(cfg))))


if __name__ == "__main__":
    main()
