"""Dead letters for operators: list a tenant's failed deliveries, retry or discard one (both recorded as events).

Tenant admins see their own tenant only: naming another tenant in `tenant_id` is a 403 NOT_TENANT_ADMIN,
whether or not that tenant exists. The platform admin names the tenant (`tenant_id`, or X-Tenant-Id);
an unknown tenant is a 404. `limit` bounds each of the two lists.
"""

from __future__ import annotations

import asyncpg
import msgspec
import nats.errors
from starlette.requests import Request
from starlette.responses import Response

from projections.dead_letters import fetch_dead_letter, open_dead_letters
from projections.streams import deliveries_stream
from schemas import api
from schemas.delivery import DeliveryJob
from schemas.errors import (
    DeadLetterNotFound,
    NotTenantAdmin,
    TenantNotFound,
    Unavailable,
    ValidationError,
    WrongExpectedSeq,
)
from schemas.events import DeliveryDiscarded, DeliveryRetried, Event
from schemas.webhooks import DeadLetters, FailedMessage, FailedNotification
from service.commands.metadata import metadata_for, retry_on_conflict
from service.consumers.webhooks import enqueue
from service.identity.auth import Principal
from service.identity.tenants import tenant_exists
from service.web.endpoints import Endpoint, Query, TextQuery
from service.web.request import JSON, caller_may, runtime_of

LIMIT = Query("limit", "most dead letters to return of each kind", minimum=1, maximum=1000, default=50)
TENANT = TextQuery("tenant_id", "the tenant (the platform admin names it; a tenant admin may name only their own)",
                   max_length=64, required=False)
TENANT_ID = TENANT.name

_jobs = msgspec.json.Decoder(DeliveryJob)


async def tenant_of(request: Request, principal: Principal) -> str:
    """The tenant whose dead letters the caller may act on, as the query names it."""
    named = TENANT.read(request)
    if principal.role != "platform":
        if named is not None and named != principal.tenant_id:
            raise NotTenantAdmin("you may only see your own tenant's dead letters", field=TENANT_ID)
        return principal.tenant_id
    tenant_id = named or principal.tenant_id
    if not tenant_id:
        raise ValidationError("tenant_id is required", field=TENANT_ID)
    if not await tenant_exists(runtime_of(request).pool, tenant_id):
        raise TenantNotFound("tenant not found", field=TENANT_ID)
    return tenant_id


async def get_dead_letters(request: Request) -> Response:
    principal = await caller_may(request, "dead_letters.read")
    tenant_id = await tenant_of(request, principal)
    limit = LIMIT.require(request)
    pool = runtime_of(request).pool
    messages = await open_dead_letters(pool, tenant_id, "message", limit=limit)
    notifications = await open_dead_letters(pool, tenant_id, "notification", limit=limit)
    return JSON(DeadLetters(
        failed_messages=[
            FailedMessage(id=r["id"], message_id=r["message_id"], user_id=r["user_id"], room_id=r["room_id"],
                          attempts=r["attempts"], last_attempt_at=r["last_attempt_at"], error=r["error"])
            for r in messages
        ],
        failed_notifications=[
            FailedNotification(id=r["id"], notification_id=r["notification_id"], topic=r["topic"],
                               attempts=r["attempts"], last_attempt_at=r["last_attempt_at"], error=r["error"])
            for r in notifications
        ],
    ))


async def retry_dead_letter(request: Request) -> Response:
    principal = await caller_may(request, "dead_letters.manage")
    tenant_id = await tenant_of(request, principal)
    runtime = runtime_of(request)
    client = runtime.nats.client
    if client is None or not client.is_connected:
        raise Unavailable("the delivery queue is unavailable; try again")
    js = client.jetstream()

    async def attempt() -> None:
        row = await _open_dead_letter(request, tenant_id)
        job = _jobs.decode(row["job"])
        # Queue first, then record: a retry that fails half-way is retried with the same message id,
        # which JetStream drops as a duplicate, so the job is queued once either way. A new id per
        # retry (not the delivery id) gets past that duplicate window on the next retry.
        try:
            await enqueue(js, job, msg_id=f"{job.delivery_id}:retry:{row['retries'] + 1}")
        except (nats.errors.Error, TimeoutError) as exc:
            raise Unavailable("the delivery queue is unavailable; try again") from exc
        await _append(request, principal, tenant_id, DeliveryRetried(delivery_id=row["delivery_id"],
                                                                     by=principal.user_id), row["stream_last_seq"])

    await retry_on_conflict(attempt)
    return JSON(api.Success())


async def discard_dead_letter(request: Request) -> Response:
    principal = await caller_may(request, "dead_letters.manage")
    tenant_id = await tenant_of(request, principal)

    async def attempt() -> None:
        row = await _open_dead_letter(request, tenant_id)
        await _append(request, principal, tenant_id, DeliveryDiscarded(delivery_id=row["delivery_id"],
                                                                       by=principal.user_id), row["stream_last_seq"])

    await retry_on_conflict(attempt)
    return JSON(api.Success())


async def _open_dead_letter(request: Request, tenant_id: str) -> asyncpg.Record:
    row = await fetch_dead_letter(runtime_of(request).pool, tenant_id, request.path_params["id"])
    if row is None or row["status"] != "open" or row["job"] is None:
        raise DeadLetterNotFound("no open dead letter with this id", field="id")
    return row


async def _append(request: Request, principal: Principal, tenant_id: str, event: Event, expected_seq: int) -> None:
    # expected_seq: the dead letter must still be open when the event lands (another operator, a new failure).
    await runtime_of(request).appender.append(
        deliveries_stream(tenant_id), [event], tenant_id=tenant_id, metadata=metadata_for(principal),
        expected_seq=expected_seq,
    )


ENDPOINTS = [
    Endpoint("GET", "/admin/dead-letters", get_dead_letters,
             "Failed deliveries still open (tenant admins: their tenant; the platform admin: tenant_id)",
             response=DeadLetters, query=(TENANT, LIMIT), errors=(NotTenantAdmin, TenantNotFound)),
    Endpoint("POST", "/admin/dead-letters/{id}/retry", retry_dead_letter,
             "Queue a failed delivery again (same X-Roomlog-Delivery id); it leaves the dead letters",
             response=api.Success, errors=(NotTenantAdmin, TenantNotFound, DeadLetterNotFound, WrongExpectedSeq),
             query=(TENANT,)),
    Endpoint("DELETE", "/admin/dead-letters/{id}", discard_dead_letter, "Discard a failed delivery",
             response=api.Success, errors=(NotTenantAdmin, TenantNotFound, DeadLetterNotFound, WrongExpectedSeq),
             query=(TENANT,)),
]
