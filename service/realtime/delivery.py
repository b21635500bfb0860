"""Real-time delivery for one instance: JetStream set-up, the relay, and the fan-out hub."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import nats
import structlog

from eventstore.append import Appender
from eventstore.relay import Relay
from schemas.config import Settings
from service.consumers import start_delivery_consumers
from service.identity.tokens import TokenSigner
from service.observability.metrics import Metrics
from service.realtime._logfeed import LogFeed
from service.realtime.hub import Hub, announce_shutdown
from service.realtime.jetstream import ensure_jetstream, event_subject
from service.realtime.nats_link import NatsLink
from service.realtime.polls import Polls
from service.realtime.presence import Presence
from service.realtime.typing import TypingView

log = structlog.get_logger("roomlog.realtime")


class Realtime:
    """Starts once NATS is reachable (it may come up after the service) and stops cleanly."""

    def __init__(
        self, settings: Settings, nats: NatsLink, pool: asyncpg.Pool, appender: Appender, metrics: Metrics,
        *, signer: TokenSigner | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.metrics = metrics
        self.nats = nats
        self.pool = pool
        self.appender = appender
        self.hub = Hub(pool, support_handle_seconds=settings.support_default_handle_seconds,
                       typing_seconds=settings.typing_seconds)
        self.feed = LogFeed(pool, self.hub)
        self.presence = Presence(pool, flush_seconds=settings.presence_flush_seconds,
                                 memory_seconds=settings.presence_memory_seconds)
        self.typing = TypingView(clock=time.monotonic, typing_seconds=settings.typing_seconds)
        self.polls = Polls(self.hub, self.typing, max_waiting=settings.poll_max_waiting,
                           max_per_user=settings.poll_max_per_user)
        self.relay: Relay | None = None
        self.ready = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Begin in the background: wait for NATS, configure JetStream, start relay and hub."""
        self._stopping = False
        if not self.nats.connected:
            self.feed.start()
        self.nats.on_disconnected.append(self._nats_lost)
        self.nats.on_reconnected.append(self._nats_back)
        self._tasks.append(asyncio.create_task(self._start(), name="realtime-start"))
        self._announce_before_shutdown()

    async def _nats_lost(self) -> None:
        if not self._stopping:
            self.feed.start()

    async def _nats_back(self) -> None:
        # The client re-subscribed before telling us: NATS brings what comes now, the log what came meanwhile.
        await self.feed.stop()
        await self.hub.on_reconnected()

    def _announce_before_shutdown(self) -> None:
        # uvicorn closes WebSockets (code 1012) before the app's shutdown runs, so the goodbye frame
        # must go out from the signal itself; then uvicorn's own handler starts its usual shutdown.
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            async def announce_then_stop(sig: int = sig, previous: Callable[..., Any] = previous) -> None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(announce_shutdown(self.hub), 2.0)
                previous(sig, None)

            def on_signal(announce: Callable[[], Any] = announce_then_stop) -> None:
                self._tasks.append(asyncio.create_task(announce(), name="announce-shutdown"))

            loop.add_signal_handler(sig, on_signal)

    async def _start(self) -> None:
        await self.nats.ready.wait()
        client = self.nats.client
        assert client is not None and self.settings.database_url is not None
        js = client.jetstream()
        while True:
            try:
                await ensure_jetstream(js, self.settings)
                break
            except (nats.errors.Error, OSError) as exc:  # e.g. a cluster still electing its leader
                log.warning("setting up JetStream failed, retrying", error=repr(exc))
                await asyncio.sleep(1.0)
        await self.hub.start(client)
        self.typing.start(client)
        await self.feed.stop()
        await self.presence.start(client)
        self.relay = Relay(self.settings.database_url, client, event_subject)
        self._relay_task = asyncio.create_task(self.relay.run(), name="relay")
        self._tasks.append(self._relay_task)
        self._tasks += await start_delivery_consumers(
            self.settings, client, self.presence, self.pool, self.appender, self.metrics, signer=self.signer
        )
        self.ready.set()
        log.info("realtime delivery ready")

    @property
    def relay_running(self) -> bool:
        """Whether this instance's relay task runs (it leads the relay, or waits to take over)."""
        task = self._relay_task
        return task is not None and not task.done()

    async def stop(self) -> None:
        """Tell clients to reconnect elsewhere, then stop the relay and the hub."""
        self._stopping = True
        self.polls.close()
        await self.feed.stop()
        await announce_shutdown(self.hub)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.hub.stop()
        await self.typing.stop()
        await self.presence.stop()
