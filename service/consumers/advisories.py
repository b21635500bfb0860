"""JetStream max-deliveries advisories of the webhook consumer, turned into dead letters.

The sender records a dead letter itself when its last attempt fails. When no sender answered the last
attempt at all (an instance died mid-call, or hung past the ack wait), JetStream gives up on the job
and says so on an advisory subject instead. Any one instance (a queue group) reads the job from the
stream by its sequence, records the same `delivery.failed` the sender would have (same idempotency
key, so never twice), and deletes the job, which would otherwise stay in the work queue for ever.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from eventstore.append import Appender
from schemas.delivery import DeliveryJob
from service.consumers.webhook_sender import generation_of, record_failure
from service.realtime.jetstream import DELIVERIES_STREAM, WEBHOOK_CONSUMER

log = structlog.get_logger("roomlog.advisories")

ADVISORY_SUBJECT = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{DELIVERIES_STREAM}.{WEBHOOK_CONSUMER}"
QUEUE_GROUP = "roomlog-advisories"
NO_RESPONSE = "max deliveries reached without a response"


class MaxDeliveriesAdvisory(msgspec.Struct, forbid_unknown_fields=False):
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


_advisories = msgspec.json.Decoder(MaxDeliveriesAdvisory)
_jobs = msgspec.json.Decoder(DeliveryJob)


class MaxDeliveriesListener:
    """Records a dead letter for each job JetStream gave up on."""

    def __init__(
        self, nc: NatsClient, js: JetStreamContext, appender: Appender, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._nc = nc
        self._js = js
        self._appender = appender
        self._clock = clock
        self._sub: Subscription | None = None
        self.recorded = 0

    async def start(self) -> None:
        """Subscribe to the advisories (one instance of the cluster handles each)."""
        self._sub = await self._nc.subscribe(ADVISORY_SUBJECT, queue=QUEUE_GROUP, cb=self._on_advisory)

    async def stop(self) -> None:
        """Stop listening."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_advisory(self, msg: Msg) -> None:
        try:
            await self.handle(_advisories.decode(msg.data))
        except Exception:
            log.exception("max-deliveries advisory not handled", advisory=msg.data[:300])

    async def handle(self, advisory: MaxDeliveriesAdvisory) -> None:
        """Record the dead letter of the job the advisory is about, then drop the job from the queue."""
        try:
            raw = await self._js.get_msg(DELIVERIES_STREAM, advisory.stream_seq)
        except NotFoundError:
            return  # the sender acked it after all, having recorded the failure itself
        if raw.data is None:
            return
        job = _jobs.decode(raw.data)
        await record_failure(
            self._appender, job, generation=generation_of(raw.headers, job), attempts=advisory.deliveries,
            error=NO_RESPONSE, at=datetime.fromtimestamp(self._clock(), UTC),
        )
        self.recorded += 1
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(DELIVERIES_STREAM, advisory.stream_seq)
        log.warning("webhook delivery gave up without a response", delivery_id=job.delivery_id,
                    attempts=advisory.deliveries)
