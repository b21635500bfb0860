"""The instance's NATS connection: connects when NATS comes up (it may be later than the service), reports
losses and reconnections to whoever registered for them, and closes within a bound even with NATS gone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import nats
import structlog
from nats.aio.client import Client as NatsClient

log = structlog.get_logger("roomlog.nats")


class NatsLink:
    """The NATS connection; when NATS is down at start-up it keeps trying in the background."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.client: NatsClient | None = None
        self.ready = asyncio.Event()
        # Called after the client reconnected by itself: plain subscriptions missed what came meanwhile.
        self.on_reconnected: list[Callable[[], Awaitable[None]]] = []
        # Called when the connection is lost (the client then keeps reconnecting by itself).
        self.on_disconnected: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def start(self) -> None:
        """Connect now if possible, else start retrying in the background."""
        if self.url is None:
            return
        if not await self._try_connect():
            self._task = asyncio.create_task(self._keep_trying(), name="nats-connect")

    async def close(self) -> None:
        """Stop retrying and close the connection."""
        if self._task is not None:
            self._task.cancel()
        if self.client is None or self.client.is_closed:
            return
        try:
            await asyncio.wait_for(self.client.close(), CLOSE_SECONDS)
        except (TimeoutError, OSError, RuntimeError, nats.errors.Error) as exc:
            # With NATS gone, nats-py fails flushing what it still had pending into the dead transport
            # (RuntimeError from uvloop): nothing is lost that the log does not keep, so stop anyway.
            log.warning("closing the nats connection failed", error=repr(exc))

    async def _reconnected(self) -> None:
        log.info("nats reconnected")
        for callback in self.on_reconnected:
            await callback()

    async def _disconnected(self) -> None:
        for callback in self.on_disconnected:
            await callback()

    async def _keep_trying(self) -> None:
        connected = False
        while not connected:
            await asyncio.sleep(1.0)
            connected = await self._try_connect()

    async def _try_connect(self) -> bool:
        assert self.url is not None
        servers = [u.strip() for u in self.url.split(",") if u.strip()]  # a cluster's servers, comma-separated
        # nats-py retries a first connect for ever when told to reconnect for ever: only connect to a
        # server that answers, so the service starts (degraded) while NATS is away.
        if not await _any_reachable(servers):
            log.warning("nats not reachable, retrying", servers=servers)
            return False
        client = NatsClient()
        try:
            # After the first connect, the client reconnects by itself for as long as it takes.
            await asyncio.wait_for(client.connect(
                servers, name="roomlog", max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2,
                reconnected_cb=self._reconnected, disconnected_cb=self._disconnected, error_cb=self._error,
            ), FIRST_CONNECT_SECONDS)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            log.warning("nats not reachable, retrying", error=str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):
                await client.close()
            return False
        self.client = client
        self.ready.set()
        return True

    async def _error(self, exc: Exception) -> None:
        # One line per problem: nats-py's default prints a traceback for every reconnect attempt.
        log.warning("nats connection problem", error=str(exc) or type(exc).__name__)


FIRST_CONNECT_SECONDS = 10.0
CLOSE_SECONDS = 5.0


async def _any_reachable(servers: list[str]) -> bool:
    for server in servers:
        url = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 4222), 2.0
            )
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
