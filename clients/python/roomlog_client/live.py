"""Subscription: a room's events over the WebSocket, resumed exactly by seq across every kind of break.

The rule that makes it exact: for each room the client knows the last seq it handed to the application,
and every (re)connection starts with `sync {rooms: {room_id: that seq}}`. The server answers with
everything after it, then live events, in seq order. The client still checks: an event at or below the
known seq is a duplicate and dropped; one past the next seq is a gap, and the client reconnects and syncs
from what it has instead of passing it on. So the application sees each room's seqs 1..N once, in order,
whatever happens between — network loss, `resync` (the client fell behind), `server.shutdown`, a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from roomlog_client.errors import ApiError, AuthenticationFailed, ConnectionLost

if TYPE_CHECKING:
    from roomlog_client.client import RoomlogClient

# Frames that carry a room and a seq but are not room events.
_NOT_EVENTS = frozenset({"send.ok", "ack.received", "read.receipt", "synced", "resync", "error"})
# Frames about the connection itself, never handed to the application.
_CONTROL = frozenset({"synced", "resync", "server.shutdown", "pong", "events.batch"})


class SeqStore(Protocol):
    """Where a subscription keeps each room's last handled seq, so a restarted program resumes there."""

    def load(self) -> Mapping[str, int]: ...

    def save(self, positions: Mapping[str, int]) -> None: ...


class JsonFileSeqStore:
    """A SeqStore in a JSON file, written atomically (write a temporary file, then rename)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        return {str(k): int(v) for k, v in json.loads(self.path.read_text()).items()}

    def save(self, positions: Mapping[str, int]) -> None:
        partial = self.path.with_suffix(self.path.suffix + ".partial")
        partial.write_text(json.dumps(dict(positions), sort_keys=True))
        partial.replace(self.path)


class Subscription:
    """`async for event in subscription`: room events (dicts with `type, room_id, seq, actor, created_at,
    data`), each room's in seq order with no gap and no duplicate; with `signals=True` also the frames that
    are not room events (typing, presence, receipts, notifications), which have no seq and are not resumed.

    A position is saved (to the `store`, if any) when the application asks for the next event, i.e. after
    it handled the previous one, and on `close()` (also leaving `async with` without an exception): a
    crash while handling an event replays that one event on the next start, never skips it.

    `state` is "connecting", "live", "reconnecting" or "closed"; `on_state` hears every change.
    """

    def __init__(self, client: RoomlogClient, positions: dict[str, int], *, store: SeqStore | None,
                 signals: bool, on_state: Callable[[str], None] | None) -> None:
        self.client = client
        self.store = store
        self.positions = {**positions, **(dict(store.load()) if store is not None else {})}
        self.signals = signals
        self.on_state = on_state
        self.state = "connecting"
        self.reconnects = 0
        self._socket: ClientConnection | None = None
        self._closed = False
        self._closing = asyncio.Event()
        self._iterator: AsyncGenerator[dict[str, Any]] | None = None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    async def close(self, *, save: bool = True) -> None:
        """Stop (the iteration ends) and, unless `save=False`, save the positions of the events handed out."""
        self._closed = True
        self._closing.set()
        if self._socket is not None:
            await self._socket.close()
        # From another task the iteration is running: the closed socket and the flag end it instead.
        if self._iterator is not None and not getattr(self._iterator, "ag_running", False):
            await self._iterator.aclose()
        if save and self.store is not None:
            self.store.save(self.positions)
        self._set_state("closed")

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        await self.close(save=kind is None)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def __anext__(self) -> dict[str, Any]:
        return await self.__aiter__().__anext__()

    async def _events(self) -> AsyncGenerator[dict[str, Any]]:
        failures = 0
        while not self._closed:
            try:
                async for frame in self._session():
                    failures = 0
                    yield frame
                    if "seq" in frame and self.store is not None and frame.get("type") not in _NOT_EVENTS:
                        self.store.save(self.positions)
            except AuthenticationFailed:
                self._set_state("closed")
                raise
            except (TimeoutError, ConnectionClosed, InvalidHandshake, OSError, httpx.TransportError,
                    ConnectionLost):
                # A refused handshake included: a token minted by a server that restarted since (with a new
                # signing key) is stale, not wrong. The next attempt mints a new one; credentials that are
                # really wrong fail there, as AuthenticationFailed from POST /tokens.
                pass
            except ApiError as failure:
                if failure.status < 500 and failure.status != 429:
                    self._set_state("closed")
                    raise
            if self._closed:
                break
            failures += 1
            self.reconnects += 1
            self._set_state("reconnecting")
            with contextlib.suppress(TimeoutError):
                pause = min(10.0, 0.1 * 2 ** min(failures, 7)) * (0.5 + random.random() / 2)
                await asyncio.wait_for(self._closing.wait(), pause)
        self._set_state("closed")

    async def _session(self) -> AsyncIterator[dict[str, Any]]:
        """One connection: token, connect, sync from the known positions, then frames until it breaks."""
        token = await self.client.post_tokens()
        url = _ws_url(self.client.base_url, token["ws_url"])
        async with connect(url, open_timeout=10, max_size=None) as socket:
            self._socket = socket
            # batch: the catch-up comes as events.batch frames (many events each), which is much faster.
            await socket.send(json.dumps({"type": "sync", "rooms": self.positions, "batch": True}))
            async for raw in socket:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "synced":
                    self._set_state("live")
                elif kind in ("resync", "server.shutdown"):
                    # Behind, or the server is going away: reconnect (after the wait it asks for) and sync.
                    await asyncio.sleep(float(frame.get("reconnect_after_ms", 0)) / 1000)
                    return
                elif kind == "error" and frame.get("code") == "AUTHENTICATION_ERROR":
                    return  # the session behind the token ended: a new token (or the refresh) decides
                events = _room_events(frame)
                for event in events:
                    room, seq = event["room_id"], int(event["seq"])
                    known = self.positions.get(room)
                    if known is None or seq <= known:
                        continue  # not a subscribed room, or a duplicate
                    if seq != known + 1:
                        return  # a gap: never hand it on; sync again from what we have
                    self.positions[room] = seq
                    yield event
                if not events and self.signals and kind not in _CONTROL:
                    yield frame
        self._socket = None


def _room_events(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The room events a frame carries: itself, or a batch frame's `events`."""
    kind = frame.get("type")
    if kind == "events.batch" and isinstance(frame.get("events"), list):
        return [e for e in frame["events"] if isinstance(e, dict) and "seq" in e and "room_id" in e]
    if kind in _NOT_EVENTS or "seq" not in frame or "room_id" not in frame:
        return []
    return [frame]


def _ws_url(base_url: str, ws_path: str) -> str:
    """The WebSocket URL of the token's `ws_url` (a path) on the server at `base_url`."""
    if ws_path.startswith(("ws://", "wss://")):
        return ws_path
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + ws_path
