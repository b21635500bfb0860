"""Tenant webhooks: their configuration in PostgreSQL, and how each call is signed.

A receiver checks a call by recomputing `X-Roomlog-Signature`: `sha256=` and the hex HMAC-SHA256,
keyed with the webhook's secret, of `<X-Roomlog-Timestamp>.<raw body>`. The timestamp (Unix seconds)
is inside the signed text, so a receiver that rejects old timestamps also rejects replays.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg
import msgspec
from nats.js import JetStreamContext

from eventstore._pubacks import MSG_ID_HEADER
from eventstore.types import Queryable
from schemas.delivery import DeliveryJob
from schemas.errors import TenantNotFound
from schemas.webhooks import CreatedWebhook, Webhook
from service.identity.ids import new_id
from service.realtime.jetstream import delivery_subject

SIGNATURE_HEADER = "X-Roomlog-Signature"
TIMESTAMP_HEADER = "X-Roomlog-Timestamp"
DELIVERY_HEADER = "X-Roomlog-Delivery"
EVENT_HEADER = "X-Roomlog-Event"
# The request id of the HTTP call that appended the event (when it came from one), to follow it end to end.
CORRELATION_HEADER = "X-Roomlog-Correlation-Id"
SECRET_PREFIX = "whsec_"

_jobs = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to deliver: what the sender needs of a webhook."""

    webhook_id: str
    url: str
    secret: str
    nats_subject: str | None = None  # a bot inside the cluster: a NATS request instead of an HTTP call


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Roomlog-Signature` value for a body sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def new_secret() -> str:
    """A fresh 256-bit signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_view(row: asyncpg.Record) -> Webhook:
    """The API view of a webhooks row (never the secret)."""
    return Webhook(webhook_id=row["webhook_id"], url=row["url"], events=list(row["events"]),
                   created_at=row["created_at"])


async def create_webhook(
    conn: Queryable, tenant_id: str, *, url: str, events: list[str], secret: str | None = None
) -> CreatedWebhook:
    """Store a webhook of the tenant; the returned secret is the only time it is shown. 404 for no such tenant."""
    webhook_id, secret = new_id("wh"), secret or new_secret()
    events = sorted(set(events))
    try:
        created_at = await conn.fetchval(
            "INSERT INTO webhooks (webhook_id, tenant_id, url, secret, events) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING created_at",
            webhook_id, tenant_id, url, secret, events,
        )
    except asyncpg.ForeignKeyViolationError:  # the platform admin named no existing tenant
        raise TenantNotFound("tenant not found", field="tenant_id") from None
    return CreatedWebhook(webhook_id=webhook_id, url=url, events=events, secret=secret, created_at=created_at)


async def list_webhooks(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's webhooks that are not deleted, oldest first."""
    return await conn.fetch(
        "SELECT webhook_id, url, events, created_at FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at, webhook_id",
        tenant_id,
    )


async def delete_webhook(conn: Queryable, tenant_id: str, webhook_id: str) -> bool:
    """Delete a webhook of the tenant (its queued deliveries are dropped); False when there is none."""
    deleted = await conn.fetchval(
        "UPDATE webhooks SET deleted_at = now() WHERE webhook_id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        " RETURNING webhook_id",
        webhook_id, tenant_id,
    )
    return deleted is not None


async def subscribed_targets(conn: Queryable, tenant_id: str, event: str) -> list[Target]:
    """The tenant's live webhooks that subscribed to `event`."""
    rows = await conn.fetch(
        "SELECT webhook_id, url, secret FROM webhooks"
        " WHERE tenant_id = $1 AND deleted_at IS NULL AND $2 = ANY(events) ORDER BY webhook_id",
        tenant_id, event,
    )
    return [Target(r["webhook_id"], r["url"], r["secret"]) for r in rows]


async def subscribed_to_any(conn: Queryable, tenant_id: str, events: tuple[str, ...]) -> list[Target]:
    """The tenant's live webhooks that subscribed to at least one of `events`."""
    rows = await conn.fetch(
        "SELECT webhook_id, url, secret FROM webhooks"
        " WHERE tenant_id = $1 AND deleted_at IS NULL AND events && $2::text[] ORDER BY webhook_id",
        tenant_id, list(events),
    )
    return [Target(r["webhook_id"], r["url"], r["secret"]) for r in rows]


async def target_of(conn: Queryable, tenant_id: str, webhook_id: str) -> Target | None:
    """The webhook a delivery goes to, or None once it was deleted."""
    row = await conn.fetchrow(
        "SELECT webhook_id, url, secret FROM webhooks WHERE webhook_id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        webhook_id, tenant_id,
    )
    return None if row is None else Target(row["webhook_id"], row["url"], row["secret"])


def encode_job(job: DeliveryJob) -> bytes:
    """The wire form of a delivery job."""
    return _jobs.encode(job)


async def enqueue(js: JetStreamContext, job: DeliveryJob, *, msg_id: str | None = None) -> None:
    """Queue a webhook call; a second enqueue with the same `msg_id` (default: the delivery id) is dropped."""
    await js.publish(delivery_subject(job.tenant_id, "webhook"), encode_job(job),
                     headers={MSG_ID_HEADER: msg_id or job.delivery_id})
