"""The webhook job producer: message.offline for members who missed a message, notifications, and bot.triggered
for the bots a message triggers (service/consumers/bots.py).

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
from urllib.parse import quote

import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from eventstore.types import Queryable
from projections.members import list_members
from projections.subscriptions import notification_targets
from projections.user_rooms import muted_by
from schemas.delivery import DeliveryJob
from schemas.events import MessageSent, NotificationSent, RecordedEvent
from service.consumers._pull import Puller
from service.consumers.bots import BotJobs
from service.consumers.support_webhooks import SUPPORT_KEY, SUPPORT_WEBHOOK_EVENTS, support_job, webhook_event_of
from service.consumers.webhooks import MSG_ID_HEADER, Target, encode_job, subscribed_targets, subscribed_to_any
from service.domain.messages import mentions_user
from service.identity.auth import TtlCache
from service.realtime.jetstream import DELIVERY_PRODUCER, EVENTS_STREAM, delivery_subject
from service.realtime.presence import Presence

# What a user id keeps unencoded in a delivery id: RFC 3986's sub-delimiters and '@' (never ':' or '%').
_ID_SAFE = "@!$&'()*+,;="

log = structlog.get_logger("roomlog.offline")

OFFLINE_EVENT = "message.offline"
NOTIFICATION_EVENT = "notification"
FETCH_BATCH = 100
FETCH_WAIT_SECONDS = 2.0
# Events come in bursts (a commit's worth): taking a whole burst at once sends its acks in one write.
FETCH_LINGER_SECONDS = 0.02
# How long an instance trusts its list of a tenant's webhooks: a new webhook gets jobs within this time.
TARGETS_CACHE_SECONDS = 2.0
RETRY_DELAY_SECONDS = 1.0

_events = msgspec.json.Decoder(RecordedEvent)


def _webhook_key(subject: str) -> tuple[str, str]:
    """(tenant, webhook event) of an event's subject: `rl.<tenant>.room.<room>`, `rl.<tenant>.notify`, or
    `rl.<tenant>.support.<session>` (any support webhook event)."""
    _, tenant_id, kind = subject.split(".", 3)[:3]
    if kind == "support":
        return tenant_id, SUPPORT_KEY
    return tenant_id, NOTIFICATION_EVENT if kind == "notify" else OFFLINE_EVENT


def offline_job(event: RecordedEvent, target: Target, user_id: str) -> DeliveryJob:
    """The job telling `target` that `user_id` missed the message in `event`."""
    sent = event.event
    assert isinstance(sent, MessageSent)
    # Percent-encoded: the id travels in the X-Roomlog-Delivery header, which is ASCII, and user ids need not be.
    delivery_id = f"{event.position}:{target.webhook_id}:{quote(user_id, safe=_ID_SAFE)}"
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
        room_id=event.stream_id, message_id=sent.message_id, correlation_id=event.metadata.correlation_id,
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
        notification_id=n.notification_id, topic=n.topic, correlation_id=event.metadata.correlation_id,
    )


class OfflineNotifier:
    """Turns messages and notifications into webhook jobs until cancelled."""

    def __init__(self, nc: NatsClient, db: Queryable, presence: Presence, *, bot_context: int = 10) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._db = db
        self._presence = presence
        self._targets: TtlCache[tuple[str, str], list[Target]] = TtlCache(
            self._load_targets, ttl=TARGETS_CACHE_SECONDS
        )
        self._bots = BotJobs(db, context_messages=bot_context)
        self.queued = 0

    async def run(self) -> None:
        """Pull room events and queue jobs, for ever."""
        puller = Puller(self._nc, EVENTS_STREAM, DELIVERY_PRODUCER, batch=FETCH_BATCH, expires=FETCH_WAIT_SECONDS,
                        linger=FETCH_LINGER_SECONDS)
        await puller.start()
        try:
            while True:
                try:
                    msgs = await puller.next_batch()
                except Exception as exc:  # NATS reconnecting, JetStream unavailable: wait and pull again
                    log.warning("fetching room events failed", error=repr(exc))
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
                    continue
                await self._handle_batch(msgs)
        finally:
            await puller.stop()

    async def _handle_batch(self, msgs: list[Msg]) -> None:
        # Most tenants have no webhooks: answer from the subject alone, without decoding the event,
        # and without a task per event (one per tenant whose webhooks are looked up).
        keys = list({_webhook_key(msg.subject) for msg in msgs})
        targets = await asyncio.gather(*(self._targets.get(key) for key in keys))
        wanted = {key for key, found in zip(keys, targets, strict=True) if found}
        # Room messages of tenants with bots are looked at too (bot.triggered), webhooks or not.
        for key in keys:
            if key[1] == OFFLINE_EVENT and key not in wanted and await self._bots.has_bots(key[0]):
                wanted.add(key)
        for msg in msgs:
            if _webhook_key(msg.subject) not in wanted:
                await msg.ack()
        await asyncio.gather(*(self._handle(msg) for msg in msgs if _webhook_key(msg.subject) in wanted))

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
        """The webhook jobs a committed event calls for (only messages and notifications call for any)."""
        if isinstance(event.event, NotificationSent):
            return await self._notification_jobs(event, event.event)
        if (support_event := webhook_event_of(event.event)) is not None:
            targets = await self._targets.get((event.tenant_id, support_event))
            return [support_job(event, target, support_event) for target in targets]
        sent = event.event
        if not isinstance(sent, MessageSent):
            return []
        return [*await self._offline_jobs(event, sent), *await self._bots.jobs_for(event, sent)]

    async def _offline_jobs(self, event: RecordedEvent, sent: MessageSent) -> list[DeliveryJob]:
        targets = await self._targets.get((event.tenant_id, OFFLINE_EVENT))
        if not targets:
            return []
        rows = await list_members(self._db, event.tenant_id, event.stream_id)
        muted = await muted_by(self._db, event.tenant_id, event.stream_id)
        members = [r["user_id"] for r in rows if r["user_id"] != sent.sender_id]
        connected = await self._presence.connected_users(event.tenant_id, members)
        offline = [
            user_id for user_id in members
            if user_id not in connected and (user_id not in muted or mentions_user(sent.mentions, user_id))
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
        connected = await self._presence.connected_users(event.tenant_id, users)
        offline = [u for u in users if u not in connected]
        return [notification_job(event, target, users, offline) for target in targets]

    async def _load_targets(self, key: tuple[str, str]) -> list[Target]:
        tenant_id, webhook_event = key
        if webhook_event == SUPPORT_KEY:
            return await subscribed_to_any(self._db, tenant_id, SUPPORT_WEBHOOK_EVENTS)
        return await subscribed_targets(self._db, tenant_id, webhook_event)
