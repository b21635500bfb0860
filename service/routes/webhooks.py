"""A tenant's webhooks for tenant admins: create (the secret is shown once), list (never the secret), delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import NotTenantAdmin, WebhookNotFound
from schemas.webhooks import CreatedWebhook, CreateWebhook, Webhook
from service.consumers.egress import check_url
from service.consumers.webhooks import create_webhook, delete_webhook, list_webhooks, webhook_view
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller_may, runtime_of


async def post_webhook(request: Request) -> Response:
    principal = await caller_may(request, "webhooks.manage")
    cmd = await body_as(request, CreateWebhook)
    runtime = runtime_of(request)
    await check_url(cmd.url, runtime.resolver, allow_private=runtime.settings.webhook_allow_private)
    created = await create_webhook(runtime.pool, principal.tenant_id, url=cmd.url,
                                   events=list(cmd.events), secret=cmd.secret)
    return JSON(created, status_code=201)


async def get_webhooks(request: Request) -> Response:
    principal = await caller_may(request, "webhooks.manage")
    return JSON([webhook_view(r) for r in await list_webhooks(runtime_of(request).pool, principal.tenant_id)])


async def remove_webhook(request: Request) -> Response:
    principal = await caller_may(request, "webhooks.manage")
    if not await delete_webhook(runtime_of(request).pool, principal.tenant_id, request.path_params["webhook_id"]):
        raise WebhookNotFound("webhook not found", field="webhook_id")
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/webhooks", post_webhook,
             "Register a webhook (tenant admins); the signing secret is shown only in this response",
             body=CreateWebhook, response=CreatedWebhook, status=201, errors=(NotTenantAdmin,),
             links=(Link("DELETE", "/webhooks/{webhook_id}"),)),
    Endpoint("GET", "/webhooks", get_webhooks, "The tenant's webhooks, without their secrets (tenant admins)",
             response=list[Webhook], errors=(NotTenantAdmin,)),
    Endpoint("DELETE", "/webhooks/{webhook_id}", remove_webhook,
             "Delete a webhook; deliveries still queued for it are dropped (tenant admins)",
             response=api.Success, errors=(NotTenantAdmin, WebhookNotFound)),
]
