"""The webhook job producer: message.offline for members who missed a message, and notifications.

All instances pull from one durable consumer of room events and notifications, so each is looked
at once. For a `message.sent`, the room's active members other than the sender who have no live
connection on any instance (the cluster-wide presence) get one job per tenant webhook subscribed to
`message.offline`; its delivery id is `<position>:<webhook_id>:<user_id>`. A `notification.sent`
becomes one job per webhook subscribed to `notification`, naming every target and which of them are
offline; its delivery id is `<position>:<webhook_id>`. The delivery id doubles as the `Nats-Msg-Id`,
so an event handled twice (a redelivery after a crash) queues no second job.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from eventstore.types import Queryable
from projections.members import list_members
from projections.subscriptions import notification_targets
from schemas.delivery import DeliveryJob
from schemas.events import MessageSent, NotificationSent, RecordedEvent
from service.auth import TtlCache
from service.consumers.webhook_sender import pull_batch
from service.jetstream import DELIVERY_PRODUCER, EVENTS_STREAM, delivery_subject
from service.presence import PresenceTracker
from service.webhooks import MSG_ID_HEADER, Target, encode_job, subscribed_targets

log = structlog.get_logger("roomlog.offline")

OFFLINE_EVENT = "message.offline"
NOTIFICATION_EVENT = "notification"
FETCH_BATCH = 100
FETCH_WAIT_SECONDS = 2.0
# How long an instance trusts its list of a tenant's webhooks: a new webhook gets jobs within this time.
TARGETS_CACHE_SECONDS = 2.0
RETRY_DELAY_SECONDS = 1.0

_events = msgspec.json.Decoder(RecordedEvent)


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


def notification_job(event: RecordedEvent, target: Target, users: list[str], offline: list[str]) -> DeliveryJob:
    """The job telling `target` about a notification, its resolved targets and who of them is offline."""
    n = event.event
    assert isinstance(n, NotificationSent)
    delivery_id = f"{event.position}:{target.webhook_id}"
    payload: dict[str, Any] = {
        "event": NOTIFICATION_EVENT,
        "delivery_id": delivery_id,
        "tenant_id": event.tenant_id,
        "notification_id": n.notification_id,
        "topic": n.topic,
        "payload": n.payload,
        "user_ids": users,
        "offline_user_ids": offline,
        "created_at": msgspec.to_builtins(event.created_at),
    }
    return DeliveryJob(
        delivery_id=delivery_id, tenant_id=event.tenant_id, webhook_id=target.webhook_id, kind="notification",
        event=NOTIFICATION_EVENT, user_id="", created_at=event.created_at, payload=payload,
        notification_id=n.notification_id, topic=n.topic,
    )


class OfflineNotifier:
    """Turns messages and notifications into webhook jobs until cancelled."""

    def __init__(self, js: JetStreamContext, db: Queryable, presence: PresenceTracker) -> None:
        self._js = js
        self._db = db
        self._presence = presence
        self._targets: TtlCache[tuple[str, str], list[Target]] = TtlCache(
            self._load_targets, ttl=TARGETS_CACHE_SECONDS
        )
        self.queued = 0

    async def run(self) -> None:
        """Pull room events and queue jobs, for ever."""
        sub = await self._js.pull_subscribe_bind(durable=DELIVERY_PRODUCER, stream=EVENTS_STREAM)
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
        # Most tenants have no webhooks: answer from the subject alone, without decoding the event.
        _, tenant_id, kind = msg.subject.split(".", 3)[:3]
        if not await self._targets.get((tenant_id, NOTIFICATION_EVENT if kind == "notify" else OFFLINE_EVENT)):
            await msg.ack()
            return
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
        """The webhook jobs a committed event calls for (only messages and notifications call for any)."""
        if isinstance(event.event, NotificationSent):
            return await self._notification_jobs(event, event.event)
        sent = event.event
        if not isinstance(sent, MessageSent):
            return []
        targets = await self._targets.get((event.tenant_id, OFFLINE_EVENT))
        if not targets:
            return []
        members = await list_members(self._db, event.stream_id)
        offline = [
            r["user_id"] for r in members
            if r["user_id"] != sent.sender_id and not self._presence.is_online(event.tenant_id, r["user_id"])
        ]
        return [offline_job(event, target, user_id) for target in targets for user_id in offline]

    async def _notification_jobs(self, event: RecordedEvent, n: NotificationSent) -> list[DeliveryJob]:
        targets = await self._targets.get((event.tenant_id, NOTIFICATION_EVENT))
        if not targets:
            return []
        users = await notification_targets(
            self._db, event.tenant_id, user_ids=n.user_ids, room_id=n.room_id,
            topic=n.topic if n.topic_subscribers else None,
        )
        offline = [u for u in users if not self._presence.is_online(event.tenant_id, u)]
        return [notification_job(event, target, users, offline) for target in targets]

    async def _load_targets(self, key: tuple[str, str]) -> list[Target]:
        tenant_id, webhook_event = key
        return await subscribed_targets(self._db, tenant_id, webhook_event)
