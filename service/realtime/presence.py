"""Who is online anywhere in the cluster, as every instance sees it.

Each instance announces a user's first connection and last disconnection at once, and every few
seconds publishes the full list of users it serves. Every instance keeps all lists, and forgets an
instance that stopped announcing (crashed) after `EXPIRY_SECONDS`. So any instance can decide alone
whether a room member has a live connection — which is what `message.offline` webhooks need.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

HEARTBEAT_SECONDS = 5.0
EXPIRY_SECONDS = 3 * HEARTBEAT_SECONDS
# Not under "rlx.<tenant>..." so no per-tenant subscriber ever matches it.
_SUBJECT = "rlc.presence"

UserKey = tuple[str, str]  # (tenant_id, user_id)


class _Announcement(msgspec.Struct, array_like=True):
    instance: str
    full: bool
    online: list[UserKey]
    offline: list[UserKey] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Announcement)


class PresenceTracker:
    """This instance's local users plus every other instance's, kept current over plain NATS."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.instance_id = secrets.token_hex(6)
        self._clock = clock
        self._local: dict[UserKey, int] = {}
        self._remote: dict[str, tuple[set[UserKey], float]] = {}
        self._gone: dict[UserKey, float] = {}  # when a user was last seen going offline (anywhere)
        self._nc: NatsClient | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def is_online(self, tenant_id: str, user_id: str) -> bool:
        """Whether the user has a live connection on any instance."""
        key = (tenant_id, user_id)
        if key in self._local:
            return True
        now = self._clock()
        return any(key in users and now - seen < EXPIRY_SECONDS for users, seen in self._remote.values())

    def offline_for(self, tenant_id: str, user_id: str) -> float | None:
        """Seconds since the user's last connection closed (0 while online); None if never seen since start."""
        if self.is_online(tenant_id, user_id):
            return 0.0
        gone = self._gone.get((tenant_id, user_id))
        return None if gone is None else self._clock() - gone

    async def connected(self, tenant_id: str, user_id: str) -> None:
        """A connection of the user opened on this instance."""
        key = (tenant_id, user_id)
        self._local[key] = self._local.get(key, 0) + 1
        if self._local[key] == 1:
            await self._announce(_Announcement(self.instance_id, False, [key]))

    async def disconnected(self, tenant_id: str, user_id: str) -> None:
        """A connection of the user closed on this instance."""
        key = (tenant_id, user_id)
        left = self._local.get(key, 0) - 1
        if left > 0:
            self._local[key] = left
            return
        self._local.pop(key, None)
        self._gone[key] = self._clock()
        await self._announce(_Announcement(self.instance_id, False, [], [key]))

    async def start(self, nc: NatsClient) -> None:
        """Listen to the other instances and start the heartbeat."""
        self._nc = nc
        self._sub = await nc.subscribe(_SUBJECT, cb=self._on_announcement)
        self._task = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _heartbeat(self) -> None:
        while True:
            await self._announce(_Announcement(self.instance_id, True, list(self._local)))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _announce(self, announcement: _Announcement) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(_SUBJECT, _encoder.encode(announcement))

    async def _on_announcement(self, msg: Msg) -> None:
        a = _decoder.decode(msg.data)
        if a.instance == self.instance_id:
            return
        known, _ = self._remote.get(a.instance, (set(), 0.0))
        # A full list replaces what we knew of that instance; a delta amends it.
        users = set(a.online) if a.full else (known | set(a.online)) - set(a.offline)
        now = self._clock()
        for key in known - users:
            self._gone[key] = now
        self._remote[a.instance] = (users, now)
