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
# Replay folds a whole batch with these two, in this order, to what `apply` makes of it event by event: per
# delivery, the events after the seq its row has; the newest failure gives the fields, the newest event the status,
# and every retry counts. A delivery without a row yet starts at its first failure (a close before it finds no row).
_FOLD = """
SELECT e.tenant_id, e.data->>'delivery_id' AS delivery_id, max(e.seq) AS seq,
       count(*) FILTER (WHERE e.type = 'delivery.retried')::int AS retried,
       (array_agg(e.type ORDER BY e.seq DESC))[1] AS last_type,
       (array_agg(e.data ORDER BY e.seq DESC) FILTER (WHERE e.type = 'delivery.failed'))[1] AS failed
"""
_STATUS = ("CASE c.last_type WHEN 'delivery.failed' THEN 'open' WHEN 'delivery.retried' THEN 'retried'"
           " ELSE 'discarded' END")
_FIELDS = {
    "kind": "c.failed->>'kind'", "user_id": "c.failed->>'user_id'", "room_id": "c.failed->>'room_id'",
    "message_id": "c.failed->>'message_id'", "notification_id": "c.failed->>'notification_id'",
    "topic": "c.failed->>'topic'", "attempts": "(c.failed->>'attempts')::integer",
    "last_attempt_at": "(c.failed->>'last_attempt_at')::timestamptz", "error": "c.failed->>'error'",
    "webhook_id": "c.failed->>'webhook_id'", "job": "NULLIF(c.failed->'job', 'null'::jsonb)",
}
_TYPES = "('delivery.failed', 'delivery.retried', 'delivery.discarded')"
_FOLD_EXISTING = f"""
UPDATE dead_letters d SET
    {", ".join(f"{column} = CASE WHEN c.failed IS NULL THEN d.{column} ELSE {value} END"
               for column, value in _FIELDS.items())},
    status = {_STATUS}, retries = d.retries + c.retried, updated_seq = c.seq
FROM ({_FOLD}
      FROM new_events e
      JOIN dead_letters cur ON cur.tenant_id = e.tenant_id AND cur.delivery_id = e.data->>'delivery_id'
      WHERE e.type IN {_TYPES} AND e.seq > cur.updated_seq
      GROUP BY 1, 2) c
WHERE d.tenant_id = c.tenant_id AND d.delivery_id = c.delivery_id
"""
_FOLD_NEW = f"""
INSERT INTO dead_letters (tenant_id, delivery_id, id, {", ".join(_FIELDS)}, status, retries, updated_seq)
SELECT c.tenant_id, c.delivery_id, 'dl_' || left(encode(sha256(convert_to(c.delivery_id, 'UTF8')), 'hex'), 24),
       {", ".join(_FIELDS.values())}, {_STATUS}, c.retried, c.seq
FROM ({_FOLD}
      FROM (SELECT n.*, min(n.seq) FILTER (WHERE n.type = 'delivery.failed')
                            OVER (PARTITION BY n.tenant_id, n.data->>'delivery_id') AS first_failed
            FROM new_events n
            WHERE n.type IN {_TYPES} AND NOT EXISTS (
                SELECT 1 FROM dead_letters cur WHERE cur.tenant_id = n.tenant_id
                AND cur.delivery_id = n.data->>'delivery_id')) e
      WHERE e.seq >= e.first_failed
      GROUP BY 1, 2) c
ON CONFLICT (tenant_id, delivery_id) DO NOTHING
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
    statements = (_FOLD_EXISTING, _FOLD_NEW)  # replay's set-based fold of a batch
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
