"""Dead letters read model: deliveries that ran out of attempts, and whether an operator retried or discarded them.

Built from each tenant's deliveries stream (`deliveries:<tenant>`): `delivery.failed` opens (or reopens)
a dead letter, `delivery.retried` and `delivery.discarded` close it. A row changes only for an event of
a higher seq than the one it last applied, so repeats and replays change nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from projections.streams import deliveries_stream
from schemas.events import DeliveryDiscarded, DeliveryFailed, DeliveryRetried, RecordedEvent

_FAILED = """
INSERT INTO dead_letters AS d (tenant_id, delivery_id, id, kind, user_id, room_id, message_id, notification_id,
    topic, attempts, last_attempt_at, error, webhook_id, job, status, retries, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, 'open', 0, $15)
ON CONFLICT (tenant_id, delivery_id) DO UPDATE
SET kind = EXCLUDED.kind, user_id = EXCLUDED.user_id, room_id = EXCLUDED.room_id,
    message_id = EXCLUDED.message_id, notification_id = EXCLUDED.notification_id, topic = EXCLUDED.topic,
    attempts = EXCLUDED.attempts, last_attempt_at = EXCLUDED.last_attempt_at, error = EXCLUDED.error,
    webhook_id = EXCLUDED.webhook_id, job = EXCLUDED.job, status = 'open', updated_seq = EXCLUDED.updated_seq
WHERE d.updated_seq < EXCLUDED.updated_seq
"""
# A retry counts, so the next re-publish gets a message id JetStream has not seen.
_CLOSED = """
UPDATE dead_letters SET status = $3, retries = retries + CASE WHEN $3 = 'retried' THEN 1 ELSE 0 END,
    updated_seq = $4
WHERE tenant_id = $1 AND delivery_id = $2 AND updated_seq < $4
"""
_COLUMNS = ", ".join(
    f"d.{c}" for c in (
        "id", "delivery_id", "kind", "user_id", "room_id", "message_id", "notification_id", "topic", "attempts",
        "last_attempt_at", "error", "webhook_id", "job", "status", "retries",
    )
)

_encoder = msgspec.json.Encoder()


def dead_letter_id(delivery_id: str) -> str:
    """The opaque, URL-safe id of a delivery's dead letter (the same after any replay)."""
    return "dl_" + hashlib.sha256(delivery_id.encode()).hexdigest()[:24]


class DeadLettersProjection:
    name = "dead_letters"
    version = 1
    tables = ("dead_letters",)
    handles = frozenset({"delivery.failed", "delivery.retried", "delivery.discarded"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE dead_letters (
        tenant_id       text NOT NULL,
        delivery_id     text NOT NULL,
        id              text NOT NULL,
        kind            text NOT NULL,
        user_id         text NOT NULL,
        room_id         text,
        message_id      text,
        notification_id text,
        topic           text,
        attempts        integer NOT NULL,
        last_attempt_at timestamptz NOT NULL,
        error           text NOT NULL,
        webhook_id      text,
        job             jsonb,
        status          text NOT NULL,
        retries         integer NOT NULL,
        updated_seq     bigint NOT NULL,
        PRIMARY KEY (tenant_id, delivery_id)
    );
    CREATE UNIQUE INDEX dead_letters_id ON dead_letters (tenant_id, id);
    CREATE INDEX dead_letters_open ON dead_letters (tenant_id, kind, last_attempt_at DESC) WHERE status = 'open';
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # One statement per event, in log order: a batch may fail, retry and discard the same delivery.
        for rec in events:
            ev = rec.event
            if isinstance(ev, DeliveryFailed):
                await conn.execute(
                    _FAILED, rec.tenant_id, ev.delivery_id, dead_letter_id(ev.delivery_id), ev.kind, ev.user_id,
                    ev.room_id, ev.message_id, ev.notification_id, ev.topic, ev.attempts, ev.last_attempt_at,
                    ev.error, ev.webhook_id, None if ev.job is None else _encoder.encode(ev.job).decode(), rec.seq,
                )
            elif isinstance(ev, DeliveryRetried | DeliveryDiscarded):
                status = "retried" if isinstance(ev, DeliveryRetried) else "discarded"
                await conn.execute(_CLOSED, rec.tenant_id, ev.delivery_id, status, rec.seq)


async def open_dead_letters(conn: Queryable, tenant_id: str, kind: str, *, limit: int) -> list[asyncpg.Record]:
    """The tenant's open dead letters of one kind ("message" or "notification"), latest failure first."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters d WHERE d.tenant_id = $1 AND d.kind = $2 AND d.status = 'open'"
        " ORDER BY d.last_attempt_at DESC, d.id LIMIT $3",
        tenant_id, kind, limit,
    )


async def fetch_dead_letter(conn: Queryable, tenant_id: str, id_: str) -> asyncpg.Record | None:
    """One dead letter of the tenant by its id, whatever its status, with the seq its deliveries stream is at."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS}, s.last_seq AS stream_last_seq FROM dead_letters d"
        " JOIN streams s ON s.stream_id = $3 WHERE d.tenant_id = $1 AND d.id = $2",
        tenant_id, id_, deliveries_stream(tenant_id),
    )
