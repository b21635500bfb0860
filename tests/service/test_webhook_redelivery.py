"""service/consumers/webhook_sender.py: a job JetStream hands over again (its ack wait ran out on a busy
instance) reaches the receiver once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from schemas.config import Settings
from schemas.delivery import DeliveryJob
from service.cli.embedded import NatsServer
from service.consumers.egress import OutboundHttp, Resolver
from service.consumers.webhook_sender import WebhookSender
from service.consumers.webhooks import enqueue
from service.realtime.jetstream import DELIVERIES_STREAM, WEBHOOK_CONSUMER, ensure_jetstream
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.service.test_webhooks import Receiver, create_webhook

SETTINGS = Settings(webhook_backoff=(0.2, 0.4), webhook_max_deliver=3, webhook_allow_private=True)


@pytest.fixture
async def js(tmp_path: Path) -> AsyncIterator[JetStreamContext]:
    """JetStream of a nats-server of its own, with the delivery stream and the webhook consumer."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    nc = await nats.connect(server.url)
    try:
        context = nc.jetstream()
        await ensure_jetstream(context, SETTINGS)
        yield context
    finally:
        await nc.close()
        server.stop()


async def test_a_copy_of_a_job_being_delivered_or_delivered_already_is_acked_without_a_second_call(
    js: JetStreamContext, runtime: Runtime, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    receiver = Receiver(mode="ok")
    await receiver.start()
    try:
        hook = await create_webhook(client, tenant, receiver.url)
        sender = WebhookSender(js, runtime.pool, runtime.appender, SETTINGS)
        sub = await js.pull_subscribe_bind(durable=WEBHOOK_CONSUMER, stream=DELIVERIES_STREAM)
        http = OutboundHttp(Resolver(), public_only=False)
        try:
            for delivery_id in ("1:a", "2:b"):
                await enqueue(js, DeliveryJob(
                    delivery_id=delivery_id, tenant_id=tenant.tenant_id, webhook_id=hook["webhook_id"],
                    kind="message", event="message.offline", user_id="bob", created_at=datetime.now(UTC),
                    payload={"delivery_id": delivery_id}, room_id="room_x", message_id="msg_x"))
                [first] = await sub.fetch(1, timeout=5)
                # Unacked past its ack wait (backoff[0]): JetStream hands the same job over again.
                [copy] = await sub.fetch(1, timeout=5)
                assert copy.metadata.num_delivered == 2
                if delivery_id == "1:a":  # the copy arrives while the first is being delivered
                    await asyncio.gather(sender._handle(first, http), sender._handle(copy, http))
                else:  # the copy arrives after the first was delivered
                    await sender._handle(first, http)
                    await sender._handle(copy, http)
            with pytest.raises(TimeoutError):  # both settled: nothing comes back
                await sub.fetch(1, timeout=1)
        finally:
            await http.close()
        assert sorted(c.json()["delivery_id"] for c in receiver.calls) == ["1:a", "2:b"]
    finally:
        await receiver.stop()
