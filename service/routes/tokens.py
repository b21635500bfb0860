"""Messaging tokens: browsers cannot set headers on a WebSocket, so they trade credentials for a short token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import Forbidden
from schemas.realtime import MessagingToken
from service.web.endpoints import Endpoint
from service.web.request import JSON, caller_may, runtime_of


async def issue_token(request: Request) -> Response:
    principal = await caller_may(request, "tokens.issue")
    runtime = runtime_of(request)
    ttl = runtime.settings.ws_token_seconds
    token, _ = runtime.auth.signer.issue(
        tenant_id=principal.tenant_id, user_id=principal.user_id, role=principal.role,
        session_id=principal.session_id, token_type="ws", ttl_seconds=ttl,
    )
    return JSON(MessagingToken(token=token, expires_in=ttl, ws_url=f"/ws?token={token}"),
                status_code=201 if request.method == "POST" else 200)


ENDPOINTS = [
    Endpoint("POST", "/tokens", issue_token, "A short-lived token for the WebSocket (/ws?token=...)",
             response=MessagingToken, status=201, errors=(Forbidden,)),
    Endpoint("GET", "/messaging/token", issue_token, "The same as POST /tokens (seed 004 spelling)",
             response=MessagingToken, errors=(Forbidden,)),
]
