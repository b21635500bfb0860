"""Real-time system test helpers: `roomlog serve` on given servers, WebSocket clients and a small API client.

A server counts as ready for real-time tests only once a probe message sent over REST has come back over
a WebSocket: NATS is connected, the instance's hub reads the event stream, and some relay publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Tenant
from tests.system.conftest import Processes, Serve, roomlog_env

# Limits off: these tests are about delivery, not the rate limiter; no access log noise in the captured stderr.
# Webhooks may name 127.0.0.1, where test receivers listen.
SERVE_ENV = {
    "ROOMLOG_DEFAULT_RATE_LIMIT": "0",
    "ROOMLOG_DEFAULT_SEND_RATE_LIMIT": "0",
    "ROOMLOG_ACCESS_LOG": "false",
    "ROOMLOG_WEBHOOK_ALLOW_PRIVATE": "true",
}
READY_SECONDS = 40.0
WAIT_SECONDS = 15.0

Frame = dict[str, Any]


# --- servers --------------------------------------------------------------------------------------


async def start_serve(processes: Processes, *, database_url: str, nats_url: str, nats_up: bool = True,
                      seconds: float = READY_SECONDS, **env: str) -> Serve:
    """Start `roomlog serve` on these servers; wait until /health answers with NATS connected (or not)."""
    serve = processes.serve(env=roomlog_env(database_url=database_url, nats_url=nats_url, **SERVE_ENV, **env))
    await wait_health(serve, lambda body: body.get("nats_connected") is nats_up, seconds=seconds)
    return serve


async def wait_health(serve: Serve, ready: Callable[[dict[str, Any]], bool], *,
                      seconds: float = READY_SECONDS) -> dict[str, Any]:
    """Poll GET /health until its body satisfies `ready`; return that body."""
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(seconds), httpx.AsyncClient(base_url=serve.base_url, timeout=2.0) as client:
            while True:
                if serve.proc.poll() is not None:
                    raise AssertionError(f"roomlog serve exited with {serve.proc.returncode}:\n{serve.stderr()}")
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get("/health")
                    body = response.json() if response.status_code in (200, 503) else {}
                    if ready(body):
                        return body
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"/health never became ready ({body}):\n{serve.stderr()[-3000:]}") from None


async def wait_live(serve: Serve, tenant: Tenant, *, seconds: float = READY_SECONDS) -> None:
    """Wait until a message sent through `serve` reaches a WebSocket client of `serve` live."""
    async with Api(serve.base_url, tenant) as api:
        room = await api.create_room("probe", [])
        client = await WsClient.open(serve.base_url, await api.token("probe"))
        try:
            await client.sync({room["room_id"]: room["last_seq"]})
            deadline = time.monotonic() + seconds
            while True:
                sent = await api.send(room["room_id"], "probe", "probe")
                try:
                    await client.wait_for(with_seq(sent["seq"]), seconds=0.5)
                    return
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no live delivery after {seconds}s:\n{serve.stderr()[-3000:]}") from None
        finally:
            await client.close()


# --- the REST API -----------------------------------------------------------------------------------


class Api:
    """A keep-alive HTTP client of one instance, acting as users of one tenant."""

    def __init__(self, base_url: str, tenant: Tenant) -> None:
        self.tenant = tenant
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, user: str, body: object = None) -> httpx.Response:
        """One request as `user` (API key + X-User-Id)."""
        return await self.http.request(method, path, json=body, headers=self.tenant.as_user(user))

    async def create_room(self, creator: str, members: list[str]) -> dict[str, Any]:
        """A group room created by `creator` (its admin) with `members`."""
        response = await self.call("POST", "/rooms", creator, {"type": "group", "members": members})
        assert response.status_code == 201, response.text
        room: dict[str, Any] = response.json()
        return room

    async def send(self, room_id: str, user: str, content: str, *, client_msg_id: str | None = None,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a message; its 201 body."""
        body: dict[str, Any] = {"content": content, "client_msg_id": client_msg_id or uuid.uuid4().hex}
        if meta is not None:
            body["meta"] = meta
        response = await self.call("POST", f"/rooms/{room_id}/messages", user, body)
        assert response.status_code == 201, response.text
        sent: dict[str, Any] = response.json()
        return sent

    async def token(self, user: str) -> str:
        """A WebSocket token for `user`."""
        response = await self.call("POST", "/tokens", user)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def last_seq(self, room_id: str, user: str) -> int:
        response = await self.call("GET", f"/rooms/{room_id}", user)
        assert response.status_code == 200, response.text
        return int(response.json()["last_seq"])

    async def events(self, room_id: str, user: str, *, after_seq: int = 0) -> list[dict[str, Any]]:
        """The room's log after `after_seq`, every page."""
        found: list[dict[str, Any]] = []
        while True:
            response = await self.call("GET", f"/rooms/{room_id}/events?after_seq={after_seq}&limit=1000", user)
            assert response.status_code == 200, response.text
            page = response.json()
            found += page
            if len(page) < 1000:
                return found
            after_seq = page[-1]["seq"]


# --- WebSocket clients --------------------------------------------------------------------------------


def with_seq(seq: int) -> Callable[[Frame], bool]:
    """Matches the frame of a room event with this seq."""
    return lambda frame: frame.get("seq") == seq


def with_field(name: str, value: object) -> Callable[[Frame], bool]:
    """Matches frames whose `name` is `value`."""
    return lambda frame: frame.get(name) == value


def ws_url(base_url: str, token: str) -> str:
    return base_url.replace("http://", "ws://", 1) + f"/ws?token={token}"


@dataclass
class WsClient:
    """A WebSocket connection whose frames a background task collects, in arrival order."""

    ws: ClientConnection
    frames: list[Frame] = field(default_factory=list)
    close_code: int | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None
    _pings: int = 0

    @classmethod
    async def open(cls, base_url: str, token: str, **options: Any) -> WsClient:
        """Connect with `token` and start collecting frames."""
        ws = await connect(ws_url(base_url, token), proxy=None, open_timeout=10, **options)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                async with self._changed:
                    self.frames.append(json.loads(raw))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self._changed:
                self.close_code = self.ws.close_code if self.ws.close_code is not None else 1006
                self._changed.notify_all()

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def sync(self, rooms: dict[str, int], *, batch: bool = False, seconds: float = WAIT_SECONDS) -> Frame:
        """Send a sync frame (asking for events.batch catch-ups when `batch`) and wait for the `synced` answering it."""
        before = self.count(lambda f: f.get("type") == "synced")
        await self.send({"type": "sync", "rooms": rooms, "batch": True} if batch else {"type": "sync", "rooms": rooms})
        await self.wait_until(lambda: self.count(lambda f: f.get("type") == "synced") > before, seconds=seconds)
        return [f for f in self.frames if f.get("type") == "synced"][-1]

    async def barrier(self, *, seconds: float = WAIT_SECONDS) -> None:
        """Ping and wait for the pong: everything the server queued for us before it has arrived."""
        self._pings += 1
        await self.send({"type": "ping"})
        await self.wait_until(lambda: self.count(lambda f: f.get("type") == "pong") >= self._pings, seconds=seconds)

    def count(self, predicate: Callable[[Frame], bool]) -> int:
        return sum(1 for f in self.frames if predicate(f))

    async def wait_until(self, condition: Callable[[], bool], *, seconds: float = WAIT_SECONDS) -> None:
        """Wait until `condition()` holds (checked whenever a frame arrives or the socket closes)."""
        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(lambda: condition() or self.close_code is not None)
        except TimeoutError:
            raise AssertionError(f"timed out after {seconds}s; last frames: {self.frames[-5:]}") from None
        if not condition():
            raise AssertionError(f"socket closed ({self.close_code}); last frames: {self.frames[-5:]}")

    async def wait_for(self, predicate: Callable[[Frame], bool], *, seconds: float = WAIT_SECONDS) -> Frame:
        """The first frame (received so far or later) that matches `predicate`."""
        await self.wait_until(lambda: any(predicate(f) for f in self.frames), seconds=seconds)
        return next(f for f in self.frames if predicate(f))

    async def wait_closed(self, *, seconds: float = WAIT_SECONDS) -> int:
        """Wait for the socket to close; its close code."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: self.close_code is not None)
        assert self.close_code is not None
        return self.close_code

    def room_events(self, room_id: str) -> list[Frame]:
        """The room event frames received for `room_id`, in arrival order."""
        return [f for f in self.frames if f.get("room_id") == room_id and "seq" in f and "actor" in f]

    def seqs(self, room_id: str) -> list[int]:
        return [f["seq"] for f in self.room_events(room_id)]

    async def close(self) -> None:
        """Close the socket and stop collecting."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


def small_receive_buffer_socket(host: str, port: int, size: int = 4096) -> socket.socket:
    """A connected TCP socket whose kernel receive buffer is small, so an unread peer fills it quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def closing(*clients: WsClient) -> AsyncIterator[None]:
    """Close the clients when the block ends."""
    try:
        yield
    finally:
        for client in clients:
            await client.close()
