"""Long-polls waiting on this instance: bounded in number, woken by the hub's fan-out of committed events.

A waiting poll is a hub subscriber of each room it polls, exactly like a WebSocket connection, so it is
woken by the same NATS subscription (and, while NATS is away, by the log feed) that delivers to sockets,
whichever instance appended the event. It holds nothing but a wake-up flag: on waking, the route reads
the log from PostgreSQL, which stays the one truth. A poll also watches its rooms' typing signals.

Bounds, per process: at most `max_waiting` polls at once (then 503 POLLS_FULL: another instance may have
room) and `max_per_user` of one user (then 429 TOO_MANY_POLLS). A slot is freed when its poll answers,
and when the client goes away mid-wait (the route stops waiting on the disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

import msgspec

from schemas.errors import PollsFull, TooManyPolls
from schemas.events import RecordedEvent
from service.realtime.hub import Hub
from service.realtime.typing import TypingView

RETRY_AFTER_SECONDS = 1
T = TypeVar("T")


class Waiter:
    """One waiting poll as the hub sees a subscriber: any event of its rooms (or a resume) wakes it.

    Thousands wait at once, each for up to minutes, so a waiter keeps as few objects as it can: a flag, and while
    it waits one future and one timer (no task per wait): every object a waiting poll holds is walked by each
    full garbage collection, and nothing else runs meanwhile.
    """

    __slots__ = ("_waiting", "_woken", "tenant_id", "user_id")

    def __init__(self, tenant_id: str, user_id: str) -> None:
        self.tenant_id = tenant_id
        self.user_id = user_id
        self._woken = False
        self._waiting: asyncio.Future[None] | None = None

    def offer_event(self, event: RecordedEvent, text: str) -> None:
        self._wake()

    def offer_frame(self, frame: msgspec.Struct, *, room_id: str | None = None) -> None:
        pass  # receipts and typing frames do not end a poll; typing is read from the TypingView

    def offer_resume(self) -> None:
        self._wake()  # NATS was away: the log may hold what was not routed

    async def shut_down(self, reconnect_after_ms: int) -> None:
        self._wake()

    def _wake(self) -> None:
        self._woken = True
        self._settle()

    def _settle(self, _: object = None) -> None:
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def wait(self, seconds: float, *, unless: asyncio.Future[None]) -> bool:
        """Wait until woken (True), `seconds` pass or `unless` completes (False); re-arm for the next wait."""
        if unless.done():
            return False
        if not self._woken:
            if seconds <= 0:
                return False
            loop = asyncio.get_running_loop()
            self._waiting = loop.create_future()
            timer = loop.call_later(seconds, self._settle)
            unless.add_done_callback(self._settle)
            try:
                await self._waiting
            finally:
                timer.cancel()
                unless.remove_done_callback(self._settle)
                self._waiting = None
        if self._woken and not unless.done():
            self._woken = False
            return True
        return False


class Polls:
    """The waiting polls of this process and their bounds."""

    def __init__(self, hub: Hub, typing: TypingView, *, max_waiting: int, max_per_user: int) -> None:
        self.hub = hub
        self.typing = typing
        self.max_waiting = max_waiting
        self.max_per_user = max_per_user
        self.waiting = 0
        self.closing = False
        self._per_user: dict[tuple[str, str], int] = defaultdict(int)
        self._waiters: set[Waiter] = set()
        self._reads: dict[Hashable, asyncio.Future[Any]] = {}

    def close(self) -> None:
        """The instance is stopping: every waiting poll answers now, and no new one waits."""
        self.closing = True
        for waiter in self._waiters:
            waiter.offer_resume()

    async def shared(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`, or the result of the same read already under way for another poll: the polls of one room
        woken by one event ask for the same events after the same seq, and read them once."""
        running = self._reads.get(key)
        if running is None:
            running = self._reads[key] = asyncio.ensure_future(read())
            running.add_done_callback(lambda _: self._reads.pop(key, None))
        result: T = await asyncio.shield(running)
        return result

    @contextlib.asynccontextmanager
    async def waiter(self, tenant_id: str, user_id: str, room_ids: list[str]) -> AsyncIterator[Waiter]:
        """A slot and a waiter subscribed to the rooms (NATS routes them here once this returns); freed on exit."""
        key = (tenant_id, user_id)
        if self.closing or self.waiting >= self.max_waiting:
            raise PollsFull("this instance has as many waiting polls as it may; retry", retry_after=RETRY_AFTER_SECONDS)
        if self._per_user[key] >= self.max_per_user:
            raise TooManyPolls(f"at most {self.max_per_user} polls of one user may wait at once",
                               retry_after=RETRY_AFTER_SECONDS)
        self.waiting += 1
        self._per_user[key] += 1
        waiter = Waiter(tenant_id, user_id)
        self._waiters.add(waiter)
        subscribed: list[str] = []
        try:
            for room_id in room_ids:
                subscribed.append(room_id)
                await self.typing.watch(tenant_id, room_id)
                await self.hub.subscribe(waiter, room_id, presence=False)
            yield waiter
        finally:
            self._waiters.discard(waiter)
            for room_id in subscribed:
                self.hub.unsubscribe(waiter, room_id)
                self.typing.release(tenant_id, room_id)
            self.waiting -= 1
            self._per_user[key] -= 1
            if self._per_user[key] <= 0:
                del self._per_user[key]
