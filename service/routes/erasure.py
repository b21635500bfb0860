"""Erasing what one user wrote (tenant admins): their message content leaves the log, read models and JetStream."""

from __future__ import annotations

import nats.errors
from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import NotTenantAdmin, Unavailable, ValidationError
from service.commands.erasure import erase
from service.web.endpoints import Endpoint
from service.web.request import JSON, caller_may, runtime_of


async def erase_user(request: Request) -> Response:
    principal = await caller_may(request, "users.erase")
    user_id = request.path_params["user_id"]
    if not api.is_user_id(user_id):
        raise ValidationError(f"user_id must be {api.USER_ID_RULE}", field="user_id")
    runtime = runtime_of(request)
    client = runtime.nats.client
    if client is None or not client.is_connected:
        raise Unavailable("JetStream is unavailable, so the erasure could not be complete; try again")
    try:
        report = await erase(runtime.pool, client.jetstream(), principal.tenant_id, user_id=user_id,
                             erased_by=principal.user_id)
    except (nats.errors.Error, TimeoutError) as exc:
        # The log and read models are erased already; a retry finds them done and finishes JetStream.
        raise Unavailable("JetStream is unavailable; the log is erased, retry to finish JetStream") from exc
    return JSON(api.Erasure(report.events, report.messages, report.jetstream_messages))


ENDPOINTS = [
    Endpoint("POST", "/users/{user_id}/erase", erase_user,
             "Erase the content of every message the user wrote (tenant admins): from the log, the read models,"
             " search and JetStream; the messages keep their seqs, and a content.erased event records the erasure",
             response=api.Erasure, errors=(NotTenantAdmin, ValidationError, Unavailable)),
]
