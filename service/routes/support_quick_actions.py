"""Quick actions (seed 001 "Quick Actions", under /support): the registry, executing one, store credit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import support as s
from schemas.api import Success
from schemas.errors import (
    Forbidden,
    InvalidTransition,
    NotTenantAdmin,
    QuickActionExists,
    QuickActionFailed,
    QuickActionInProgress,
    QuickActionNotFound,
    SessionClosed,
    SessionNotFound,
    TicketClosed,
    TicketNotFound,
    UserNotFound,
    ValidationError,
)
from service.commands.support import quick_actions as commands
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

_IDEMPOTENCY_HEADER = "Idempotency-Key"


async def get_actions(request: Request) -> Response:
    principal = await caller(request)
    return JSON(await commands.list_actions(runtime_of(request), principal))


async def post_action(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.RegisterQuickAction)
    return JSON(await commands.register(runtime_of(request), principal, cmd), status_code=201)


async def delete_action(request: Request) -> Response:
    principal = await caller(request)
    await commands.remove(runtime_of(request), principal, request.path_params["action_id"])
    return JSON(Success())


async def post_execute(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.ExecuteQuickAction)
    key = request.headers.get(_IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= 128:
        raise ValidationError("Idempotency-Key must be 1 to 128 characters", field=_IDEMPOTENCY_HEADER)
    execution, replayed = await commands.execute(runtime_of(request), principal, request.path_params["action_id"],
                                                 cmd, idempotency_key=key,
                                                 state=request.scope.setdefault("state", {}))
    return JSON(execution, headers={"X-Idempotent-Replay": "true"} if replayed else None)


async def get_credit(request: Request) -> Response:
    principal = await caller_may(request, "support.credit.read")
    return JSON(await commands.customer_credit(runtime_of(request), principal, request.path_params["customer_id"]))


ENDPOINTS = [
    Endpoint("GET", "/support/quick-actions", get_actions,
             "The quick actions of the desk: built-in ones and the tenant's own (agents and admins)",
             response=s.QuickActions, errors=(Forbidden,)),
    Endpoint("POST", "/support/quick-actions", post_action,
             "Add an action that calls the tenant's endpoint with a signed request (tenant admins); the secret"
             " is shown only here", body=s.RegisterQuickAction, response=s.RegisteredQuickAction, status=201,
             errors=(NotTenantAdmin, QuickActionExists)),
    Endpoint("DELETE", "/support/quick-actions/{action_id}", delete_action, "Remove one of the tenant's actions",
             response=Success, errors=(NotTenantAdmin, QuickActionNotFound)),
    Endpoint("POST", "/support/quick-actions/{action_id}/execute", post_execute,
             "Run an action on a session or a ticket (dry_run: only say what it would change); an Idempotency-Key"
             " runs it once",
             body=s.ExecuteQuickAction, response=s.Execution,
             errors=(Forbidden, QuickActionNotFound, SessionNotFound, SessionClosed, TicketNotFound, TicketClosed,
                     InvalidTransition, QuickActionInProgress, QuickActionFailed)),
    Endpoint("GET", "/support/customers/{customer_id}/credit", get_credit,
             "A customer's store credit: balances and entries (the desk; a customer its own)",
             response=s.CustomerCredit, errors=(Forbidden, UserNotFound)),
]
