"""Delivery consumers of one instance: the message.offline producer, the webhook sender, max-delivery advisories."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient

from eventstore.append import Appender
from projections.inline import InlineProjections
from schemas.config import Settings
from service.consumers.advisories import MaxDeliveriesListener
from service.consumers.offline import OfflineNotifier
from service.consumers.webhook_sender import WebhookSender
from service.presence import PresenceTracker

__all__ = ["MaxDeliveriesListener", "OfflineNotifier", "WebhookSender", "start_delivery_consumers"]

log = structlog.get_logger("roomlog.consumers")

# The consumers' own small pool: webhook look-ups and dead-letter appends, away from the request path.
POOL_SIZE = 4


async def start_delivery_consumers(
    settings: Settings, nc: NatsClient, presence: PresenceTracker
) -> list[asyncio.Task[None]]:
    """Create the consumers' JetStream state and start them; cancelling the returned tasks stops everything."""
    assert settings.database_url is not None
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=POOL_SIZE)
    appender = Appender(pool, InlineProjections(), writers=1)
    appender.start()
    js = nc.jetstream()
    offline = OfflineNotifier(js, pool, presence)
    sender = WebhookSender(js, pool, appender, settings)
    advisories = MaxDeliveriesListener(nc, js, appender)
    try:
        await offline.prepare()
        await advisories.start()
    except BaseException:
        await _close(advisories, appender, pool)
        raise
    return [asyncio.create_task(_run(offline, sender, advisories, appender, pool), name="delivery-consumers")]


async def _run(
    offline: OfflineNotifier, sender: WebhookSender, advisories: MaxDeliveriesListener, appender: Appender,
    pool: asyncpg.Pool,
) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_forever(offline.run, "offline producer"), name="offline-notifier")
            group.create_task(_forever(sender.run, "webhook sender"), name="webhook-sender")
    finally:
        await _close(advisories, appender, pool)


async def _forever(run: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a consumer must outlive a NATS or database outage
            log.exception(f"{name} crashed, restarting")
            await asyncio.sleep(1.0)


async def _close(advisories: MaxDeliveriesListener, appender: Appender, pool: asyncpg.Pool) -> None:
    await advisories.stop()
    await appender.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pool.close(), 10)
