"""Delivery consumers of one instance: the webhook job producer, the webhook sender, max-delivery advisories."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient

from eventstore.append import Appender
from schemas.config import Settings
from service.consumers.advisories import MaxDeliveriesListener
from service.consumers.offline import OfflineNotifier
from service.consumers.webhook_sender import WebhookSender
from service.identity.tokens import TokenSigner
from service.observability.metrics import Metrics
from service.realtime.presence import Presence

__all__ = ["MaxDeliveriesListener", "OfflineNotifier", "WebhookSender", "start_delivery_consumers"]

log = structlog.get_logger("roomlog.consumers")

async def start_delivery_consumers(
    settings: Settings, nc: NatsClient, presence: Presence, pool: asyncpg.Pool, appender: Appender,
    metrics: Metrics | None = None, signer: TokenSigner | None = None,
) -> list[asyncio.Task[None]]:
    """Start the consumers (their JetStream state exists: ensure_jetstream); cancel the tasks to stop them.

    With `signer`, bot.triggered deliveries carry reply tokens signed by it.
    """
    js = nc.jetstream()
    offline = OfflineNotifier(nc, pool, presence, bot_context=settings.bot_context_messages)
    sender = WebhookSender(js, pool, appender, settings, metrics=metrics, nc=nc, signer=signer)
    advisories = MaxDeliveriesListener(nc, js, appender)
    await advisories.start()
    return [asyncio.create_task(_run(offline, sender, advisories), name="delivery-consumers")]


async def _run(offline: OfflineNotifier, sender: WebhookSender, advisories: MaxDeliveriesListener) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_forever(offline.run, "webhook job producer"), name="offline-notifier")
            group.create_task(_forever(sender.run, "webhook sender"), name="webhook-sender")
    finally:
        with contextlib.suppress(Exception):
            await advisories.stop()


async def _forever(run: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a consumer must outlive a NATS or database outage
            log.exception(f"{name} crashed, restarting")
            await asyncio.sleep(1.0)

