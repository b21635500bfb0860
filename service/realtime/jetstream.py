"""NATS naming and JetStream configuration, all in one place and applied idempotently at start-up.

Subjects:
- `rl.<tenant>.room.<room_id>` — committed room events (stored in the EVENTS stream)
- `rl.<tenant>.user.<user>` — committed events of a user's own stream: acks, blocks, subscriptions
- `rl.<tenant>.notify` — committed notifications
- `rlx.<tenant>.typing.<room_id>` — ephemeral signals, plain NATS, never stored
- `rlp.<tenant>.<user>` — a user's presence changes, plain NATS, subscribed to only by instances watching the
  user (service/realtime/presence.py); liveness itself is in the KV bucket `roomlog_presence`
- `rld.<tenant>.<kind>` — delivery jobs (webhooks) in the DELIVERIES work queue
"""

from __future__ import annotations

import re
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RawStreamMsg,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from schemas.config import Settings

EVENTS_STREAM = "ROOMLOG_EVENTS"
DELIVERIES_STREAM = "ROOMLOG_DELIVERIES"
WEBHOOK_CONSUMER = "webhooks"
DELIVERY_PRODUCER = "offline-notifier"
# Re-publishes of one position within this window are dropped by JetStream (Nats-Msg-Id = position).
DUPLICATE_WINDOW_SECONDS = 15 * 60

_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def token(value: str) -> str:
    """A string made safe as one subject token (user ids may hold '.', '*', '>' or spaces)."""
    return value if _SAFE_TOKEN.match(value) else "~" + value.encode().hex()


def event_subject(tenant_id: str, stream_id: str) -> str:
    """Where a committed event of this tenant's stream is published."""
    if stream_id.startswith("room_"):
        return room_subject(tenant_id, stream_id)
    if stream_id.startswith("user:"):
        return f"rl.{tenant_id}.user.{token(stream_id.split(':', 2)[2])}"
    if stream_id.startswith("notifications:"):
        return f"rl.{tenant_id}.notify"
    if stream_id.startswith("sess_"):  # a support session's own stream
        return f"rl.{tenant_id}.support.{stream_id}"
    if stream_id.startswith("tkt_"):  # a support ticket's own stream: for the webhook consumer, never to clients
        return f"rl.{tenant_id}.support.{stream_id}"
    if stream_id.startswith("support:"):  # a tenant's support desk
        return f"rl.{tenant_id}.support.desk"
    if stream_id.startswith("sla-clock:"):  # SLA clocks of a subject without a stream of its own yet
        return f"rl.{tenant_id}.support.sla"
    return f"rl.{tenant_id}.other.{token(stream_id)}"


def room_subject(tenant_id: str, room_id: str) -> str:
    """The subject of one room's committed events."""
    return f"rl.{tenant_id}.room.{room_id}"


def tenant_subjects(tenant_id: str) -> list[str]:
    """What a connected client of the tenant may need besides its rooms: acks, notifications, the support
    desk, signals."""
    return [f"rl.{tenant_id}.user.*", f"rl.{tenant_id}.notify", f"rl.{tenant_id}.support.*", f"rlx.{tenant_id}.>"]


def typing_subject(tenant_id: str, room_id: str) -> str:
    return f"rlx.{tenant_id}.typing.{room_id}"


def user_presence_subject(tenant_id: str, user_id: str) -> str:
    """Where the user's presence changes are told (outside `rlx.<tenant>.>`: no tenant-wide subscriber gets them)."""
    return f"rlp.{tenant_id}.{token(user_id)}"


def presence_bucket() -> str:
    """The KV bucket of users' liveness (last activity, WebSocket leases)."""
    return "roomlog_presence"


def delivery_subject(tenant_id: str, kind: str) -> str:
    return f"rld.{tenant_id}.{kind}"


def events_stream(settings: Settings) -> StreamConfig:
    """The stream every committed event goes to; the log in PostgreSQL stays the source of truth."""
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=["rl.>"],
        retention=RetentionPolicy.LIMITS,
        max_age=float(settings.events_max_age_seconds),
        storage=StorageType.FILE,
        num_replicas=settings.nats_replicas,
        duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
        discard=DiscardPolicy.OLD,
    )


def deliveries_stream(settings: Settings) -> StreamConfig:
    """Work queue of delivery jobs: a job leaves the stream once a consumer acked it."""
    return StreamConfig(
        name=DELIVERIES_STREAM,
        subjects=["rld.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.nats_replicas,
        duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
    )


def delivery_producer_consumer() -> ConsumerConfig:
    """Room messages, notifications and support sessions' events, read once by whichever instance pulls them,
    to queue webhook jobs.

    Starts at new events: messages sent before it first existed are not looked at.
    """
    return ConsumerConfig(
        durable_name=DELIVERY_PRODUCER,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=10,
        filter_subjects=["rl.*.room.*", "rl.*.notify", "rl.*.support.*"],
        max_ack_pending=10_000,
    )


def webhook_consumer(settings: Settings) -> ConsumerConfig:
    """Durable, explicitly acked, retried with backoff; after max_deliver a job is a dead letter.

    With a backoff the server uses backoff[0] as the ack wait, whatever ack_wait says: the sender
    keeps a slow call alive with in_progress() heartbeats instead.
    """
    backoff = list(settings.webhook_backoff)[: max(settings.webhook_max_deliver - 1, 1)]
    return ConsumerConfig(
        durable_name=WEBHOOK_CONSUMER,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=max(settings.webhook_timeout_seconds * 2, backoff[0] if backoff else 1.0),
        max_deliver=settings.webhook_max_deliver,
        backoff=backoff or None,
        filter_subject="rld.>",
        max_ack_pending=1000,
    )


async def ensure_jetstream(js: JetStreamContext, settings: Settings) -> None:
    """Create or update the streams and the durable consumer; safe to run on every start of every instance."""
    for config in (events_stream(settings), deliveries_stream(settings)):
        # Add first: adding an identical stream again is a no-op, so instances starting together agree
        # (update-first raced another instance's add). A changed configuration is applied by the update.
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    await js.add_consumer(DELIVERIES_STREAM, webhook_consumer(settings))
    await js.add_consumer(EVENTS_STREAM, delivery_producer_consumer())


async def erase_messages(
    js: JetStreamContext, tenant_id: str, *, positions: set[int], message_ids: set[str]
) -> int:
    """Delete, overwriting their bytes, the tenant's stored events at `positions` and the delivery jobs that
    carry any of `message_ids`; how many messages were erased."""
    erased = 0
    events = await _matching(js, EVENTS_STREAM, f"rl.{tenant_id}.>",
                             lambda msg: msg.header is not None and _position(msg.header) in positions)
    needles = [m.encode() for m in message_ids]
    jobs = await _matching(js, DELIVERIES_STREAM, f"rld.{tenant_id}.>",
                           lambda msg: msg.data is not None and any(n in msg.data for n in needles))
    for stream, seqs in ((EVENTS_STREAM, events), (DELIVERIES_STREAM, jobs)):
        for seq in seqs:
            # STREAM.MSG.DELETE without no_erase: the server overwrites the message with random data.
            await js.delete_msg(stream, seq)
            erased += 1
    return erased


def _position(headers: dict[str, str]) -> int:
    value = headers.get("Nats-Msg-Id", "")
    return int(value) if value.isdigit() else -1


async def _matching(
    js: JetStreamContext, stream: str, subject: str, wanted: Callable[[RawStreamMsg], bool]
) -> list[int]:
    found: list[int] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return found
        assert msg.seq is not None
        if wanted(msg):
            found.append(msg.seq)
        seq = msg.seq + 1
