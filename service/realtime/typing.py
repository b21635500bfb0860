"""Who is typing in the rooms this instance's long-polls wait on, fed from the typing signals on NATS.

Typing is ephemeral: a signal on `rlx.<tenant>.typing.<room_id>` (from a WebSocket frame or
POST /rooms/{room_id}/typing on any instance), never an event. A user counts as typing until they say
they stopped or `typing_seconds` pass without another signal, so a client that vanishes mid-word stops
typing by itself. The view subscribes to a room's signals while a poll waits on it, and keeps listening
for `linger_seconds` after the last one so a client polling again and again sees a current view.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from schemas.realtime import TypingSignal
from service.realtime.jetstream import typing_subject

Clock = Callable[[], float]
_signal = msgspec.json.Decoder(TypingSignal)


class TypingView:
    """Per room of the tenant: who is typing, until when (on `clock`, monotonic seconds)."""

    def __init__(self, *, clock: Clock, typing_seconds: float, linger_seconds: float = 60.0) -> None:
        self._clock = clock
        self._typing_seconds = typing_seconds
        self._linger_seconds = linger_seconds
        self._until: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self._watchers: dict[tuple[str, str], int] = defaultdict(int)
        self._released_at: dict[tuple[str, str], float] = {}
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._nc: NatsClient | None = None

    def start(self, nc: NatsClient) -> None:
        """Use this NATS connection; rooms watched before it came get their subscriptions on the next watch."""
        self._nc = nc

    async def stop(self) -> None:
        for sub in self._subs.values():
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = {}

    def note(self, tenant_id: str, signal: TypingSignal) -> None:
        """Record one typing signal: typing until typing_seconds from now, or not typing any more."""
        room = self._until[(tenant_id, signal.room_id)]
        if signal.typing:
            room[signal.user_id] = self._clock() + self._typing_seconds
        else:
            room.pop(signal.user_id, None)

    def typing_in(self, tenant_id: str, room_id: str) -> list[str]:
        """The users typing in the room now, sorted."""
        key = (tenant_id, room_id)
        room = self._until.get(key)
        if not room:
            return []
        now = self._clock()
        for user_id in [u for u, until in room.items() if until <= now]:
            del room[user_id]
        if not room:
            del self._until[key]
        return sorted(room)

    async def watch(self, tenant_id: str, room_id: str) -> None:
        """Listen to the room's typing signals (until a matching `release` and the linger after it)."""
        key = (tenant_id, room_id)
        self._watchers[key] += 1
        if key in self._subs or self._nc is None or not self._nc.is_connected:
            return
        self._subs[key] = await self._nc.subscribe(typing_subject(tenant_id, room_id), cb=self._on_signal)

    def release(self, tenant_id: str, room_id: str) -> None:
        key = (tenant_id, room_id)
        self._watchers[key] -= 1
        if self._watchers[key] <= 0:
            del self._watchers[key]
            self._released_at[key] = self._clock()
            asyncio.get_running_loop().call_later(self._linger_seconds, self._drop_if_idle, key)

    def _drop_if_idle(self, key: tuple[str, str]) -> None:
        released = self._released_at.get(key)
        if key in self._watchers or released is None or self._clock() - released < self._linger_seconds:
            return  # watched again meanwhile (its own release schedules the next check)
        del self._released_at[key]
        self._until.pop(key, None)
        sub = self._subs.pop(key, None)
        if sub is not None:
            asyncio.get_running_loop().create_task(_quietly_unsubscribe(sub))

    async def _on_signal(self, msg: Msg) -> None:
        try:
            signal = _signal.decode(msg.data)
        except msgspec.DecodeError:
            return
        self.note(msg.subject.split(".")[1], signal)

    @property
    def watched_rooms(self) -> int:
        """Rooms whose signals this instance receives now (watched, or lingering)."""
        return len(self._subs)


async def _quietly_unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
