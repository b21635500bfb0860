"""The message.offline producer: a webhook job for every room member who was not connected when a message came.

All instances pull from one durable consumer of the room events, so each message is looked at once.
For a `message.sent`, the room's active members other than the sender who have no live connection on
any instance (the cluster-wide presence) get one job per tenant webhook subscribed to
`message.offline`. The job's delivery id is `<position>:<webhook_id>:<user_id>` and doubles as its
`Nats-Msg-Id`, so an event handled twice (a redelivery after a crash) queues no second job.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from eventstore.types import Queryable
from projections.members import list_members
from schemas.delivery import DeliveryJob
from schemas.events import MessageSent, RecordedEvent
from service.auth import TtlCache
from service.consumers.webhook_sender import pull_batch
from service.jetstream import EVENTS_STREAM, delivery_subject
from service.presence import PresenceTracker
from service.webhooks import MSG_ID_HEADER, Target, encode_job, subscribed_targets

log = structlog.get_logger("roomlog.offline")

OFFLINE_CONSUMER = "offline-notifier"
OFFLINE_EVENT = "message.offline"
FETCH_BATCH = 100
FETCH_WAIT_SECONDS = 2.0
# How long an instance trusts its list of a tenant's webhooks: a new webhook gets jobs within this time.
TARGETS_CACHE_SECONDS = 2.0
RETRY_DELAY_SECONDS = 1.0

_events = msgspec.json.Decoder(RecordedEvent)


def offline_consumer() -> ConsumerConfig:
    """Shared by every instance; starts at new events (messages sent before it existed are not looked at)."""
    return ConsumerConfig(
        durable_name=OFFLINE_CONSUMER,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=10,
        filter_subject="rl.*.room.*",
        max_ack_pending=10_000,
    )


def offline_job(event: RecordedEvent, target: Target, user_id: str) -> DeliveryJob:
    """The job telling `target` that `user_id` missed the message in `event`."""
    sent = event.event
    assert isinstance(sent, MessageSent)
    delivery_id = f"{event.position}:{target.webhook_id}:{user_id}"
    payload: dict[str, Any] = {
        "event": OFFLINE_EVENT,
        "delivery_id": delivery_id,
        "tenant_id": event.tenant_id,
        "user_id": user_id,
        "room_id": event.stream_id,
        "message": {
            "message_id": sent.message_id,
            "seq": event.seq,
            "sender_id": sent.sender_id,
            "content": sent.content,
            "meta": sent.meta,
            "created_at": msgspec.to_builtins(event.created_at),
        },
    }
    return DeliveryJob(
        delivery_id=delivery_id, tenant_id=event.tenant_id, webhook_id=target.webhook_id, kind="message",
        event=OFFLINE_EVENT, user_id=user_id, created_at=event.created_at, payload=payload,
        room_id=event.stream_id, message_id=sent.message_id,
    )


class OfflineNotifier:
    """Turns messages into message.offline jobs until cancelled."""

    def __init__(self, js: JetStreamContext, db: Queryable, presence: PresenceTracker) -> None:
        self._js = js
        self._db = db
        self._presence = presence
        self._targets: TtlCache[str, list[Target]] = TtlCache(self._load_targets, ttl=TARGETS_CACHE_SECONDS)
        self.queued = 0

    async def prepare(self) -> None:
        """Create the durable consumer (idempotent: every instance does it at start)."""
        try:
            await self._js.add_consumer(EVENTS_STREAM, offline_consumer())
        except BadRequestError as exc:  # it exists with another config (an older version): keep using it
            log.warning("offline consumer exists with another configuration", error=str(exc))

    async def run(self) -> None:
        """Pull room events and queue jobs, for ever."""
        sub = await self._js.pull_subscribe_bind(durable=OFFLINE_CONSUMER, stream=EVENTS_STREAM)
        try:
            while True:
                try:
                    msgs = await pull_batch(sub, FETCH_BATCH, wait=FETCH_WAIT_SECONDS)
                except TimeoutError:
                    continue
                except Exception as exc:  # NATS reconnecting: wait and pull again
                    log.warning("fetching room events failed", error=repr(exc))
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
                    continue
                await asyncio.gather(*(self._handle(m) for m in msgs))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, msg: Msg) -> None:
        try:
            event = _events.decode(msg.data)
        except msgspec.DecodeError:
            log.error("dropping an undecodable room event", subject=msg.subject)
            await msg.term()
            return
        try:
            jobs = await self.jobs_for(event)
            acks = [
                await self._js.publish_async(delivery_subject(job.tenant_id, "webhook"), encode_job(job),
                                             headers={MSG_ID_HEADER: job.delivery_id})
                for job in jobs
            ]
            await asyncio.gather(*acks)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("queuing message.offline jobs failed", position=event.position)
            with contextlib.suppress(Exception):
                await msg.nak(delay=RETRY_DELAY_SECONDS)
            return
        self.queued += len(jobs)
        await msg.ack()

    async def jobs_for(self, event: RecordedEvent) -> list[DeliveryJob]:
        """The message.offline jobs a committed event calls for (none unless it is a message.sent)."""
        sent = event.event
        if not isinstance(sent, MessageSent):
            return []
        targets = await self._targets.get(event.tenant_id)
        if not targets:
            return []
        members = await list_members(self._db, event.stream_id)
        offline = [
            r["user_id"] for r in members
            if r["user_id"] != sent.sender_id and not self._presence.is_online(event.tenant_id, r["user_id"])
        ]
        return [offline_job(event, target, user_id) for target in targets for user_id in offline]

    async def _load_targets(self, tenant_id: str) -> list[Target]:
        return await subscribed_targets(self._db, tenant_id, OFFLINE_EVENT)
