"""Quick actions: the registry of a tenant's desk, and executing one on a session exactly once.

An execution is recorded in the session's stream before it acts (`support.quick_action.executed`, with the
caller's idempotency key) and again when it is done (`support.quick_action.completed` with the result). A
repeated execute with the same key appends nothing: it answers the recorded outcome (or 409
QUICK_ACTION_IN_PROGRESS while the first one runs, or after it was interrupted). Integrator actions get a
signed POST carrying the execution id (`X-Roomlog-Delivery`), so an endpoint can drop repeats.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from projections.support_credit import credit_entries, credit_stream
from schemas import support as s
from schemas import tickets as t
from schemas.errors import (
    Forbidden,
    QuickActionExists,
    QuickActionFailed,
    QuickActionInProgress,
    QuickActionNotFound,
    RoomlogError,
    UserNotFound,
    ValidationError,
)
from schemas.events import SupportCreditAdded, SupportQuickActionCompleted, SupportQuickActionExecuted
from service.commands.metadata import metadata_for
from service.commands.support import sessions, tickets
from service.consumers.egress import Unreachable, check_url
from service.consumers.webhooks import new_secret, sign
from service.domain.authorization import authorize
from service.domain.support.quick_actions import (
    BOTH,
    BUILTINS,
    SESSION_STATUS_ACTIONS,
    ActionSpec,
    missing_context,
    money,
    plan_builtin,
    plan_ticket_builtin,
)
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

INTEGRATION_TIMEOUT_SECONDS = 10.0
_RESULT_BYTES = 16_384  # of an integrator's answer kept in the log


def _view(spec: ActionSpec, kind: str) -> s.QuickAction:
    return s.QuickAction(id=spec.id, name=spec.name, description=spec.description,
                         required_context=list(spec.required_context), permissions=list(spec.permissions),
                         kind=kind, targets=list(spec.targets))  # type: ignore[arg-type]


def _spec(row: asyncpg.Record) -> ActionSpec:
    return ActionSpec(row["action_id"], row["name"], row["description"], tuple(row["required_context"]),
                      tuple(row["permissions"]), BOTH)


async def list_actions(runtime: Runtime, principal: Principal) -> s.QuickActions:
    """The built-in actions, then the tenant's own, each with who may run it."""
    authorize("support.quick_actions.read", principal.role)
    rows = await runtime.pool.fetch(
        "SELECT * FROM quick_actions WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, action_id",
        principal.tenant_id)
    return s.QuickActions([*(_view(a, "builtin") for a in BUILTINS.values()),
                           *(_view(_spec(r), "integration") for r in rows)])


async def register(runtime: Runtime, principal: Principal, cmd: s.RegisterQuickAction) -> s.RegisteredQuickAction:
    """Tenant admins add an action that calls their endpoint; the secret is shown only in this answer."""
    authorize("support.quick_actions.manage", principal.role)
    if cmd.id in BUILTINS:
        raise QuickActionExists("a built-in action has this id", field="id")
    await check_url(cmd.url, runtime.resolver, allow_private=runtime.settings.webhook_allow_private)
    secret = cmd.secret or new_secret()
    try:
        await runtime.pool.execute(
            "INSERT INTO quick_actions (tenant_id, action_id, name, description, required_context, permissions, url,"
            " secret, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            principal.tenant_id, cmd.id, cmd.name, cmd.description, list(dict.fromkeys(cmd.required_context)),
            sorted(set(cmd.permissions)), cmd.url, secret, principal.user_id)
    except asyncpg.UniqueViolationError:
        raise QuickActionExists("the tenant has an action with this id", field="id") from None
    spec = ActionSpec(cmd.id, cmd.name, cmd.description, tuple(dict.fromkeys(cmd.required_context)),
                      tuple(sorted(set(cmd.permissions))), BOTH)
    return s.RegisteredQuickAction(action=_view(spec, "integration"), url=cmd.url, secret=secret)


async def remove(runtime: Runtime, principal: Principal, action_id: str) -> None:
    authorize("support.quick_actions.manage", principal.role)
    done = await runtime.pool.fetchval(
        "UPDATE quick_actions SET deleted_at = now() WHERE tenant_id = $1 AND action_id = $2 AND deleted_at IS NULL"
        " RETURNING action_id", principal.tenant_id, action_id)
    if done is None:
        raise QuickActionNotFound("no such quick action of the tenant (built-in ones cannot be removed)",
                                  field="action_id")


async def execute(
    runtime: Runtime, principal: Principal, action_id: str, cmd: s.ExecuteQuickAction, *, idempotency_key: str | None,
    state: dict[str, Any],
) -> tuple[s.Execution, bool]:
    """Run the action on the session (or, with dry_run, say what it would do); (execution, was it a replay)."""
    authorize("support.quick_actions.execute", principal.role)
    row = None if action_id in BUILTINS else await runtime.pool.fetchrow(
        "SELECT * FROM quick_actions WHERE tenant_id = $1 AND action_id = $2 AND deleted_at IS NULL",
        principal.tenant_id, action_id)
    if action_id not in BUILTINS and row is None:
        raise QuickActionNotFound("no such quick action", field="action_id")
    spec = BUILTINS[action_id] if row is None else _spec(row)
    if principal.role not in spec.permissions:
        raise Forbidden(f"this action is for {' and '.join(spec.permissions)} only")
    target_id, target = _target(cmd, spec)
    if target == "ticket":
        subject = dict(await tickets.load_ticket(runtime, principal, target_id))
    else:
        subject = dict(await sessions.load_session(runtime, principal, target_id))
    missing = missing_context(spec.required_context, cmd.context)
    if missing is not None:
        raise ValidationError(f"the context needs {missing}", field=f"context.{missing}")
    plan = None
    if row is None:
        plan = (plan_ticket_builtin if target == "ticket" else plan_builtin)(action_id, cmd.context, subject)
    changes = plan.changes if plan else [f"call {row['url']} for {target_id}"]  # type: ignore[index]
    if cmd.dry_run:
        return s.Execution(success=True, execution_id=None, action_id=action_id, dry_run=True, changes=changes,
                           result={}, message="dry run: nothing changed"), False

    key = idempotency_key or cmd.idempotency_key
    execution_id = new_id("qax")
    recorded = await runtime.appender.append(
        target_id, [SupportQuickActionExecuted(execution_id=execution_id, action_id=action_id,
                                                    context=cmd.context, changes=changes, by=principal.user_id)],
        tenant_id=principal.tenant_id, metadata=metadata_for(principal),
        idempotency_key=f"quick-action:{key}" if key else None)
    if recorded.duplicate:
        first = recorded.events[0].event
        assert isinstance(first, SupportQuickActionExecuted)
        return await _recorded_outcome(runtime, target_id, first), True

    try:
        if plan is not None and target == "ticket":
            result, message = await _run_ticket_builtin(runtime, principal, action_id, plan.params, target_id)
        elif plan is not None:
            result, message = await _run_builtin(runtime, principal, action_id, plan.params, subject, execution_id,
                                                 state=state)
        else:
            assert row is not None
            result, message = await _call_integration(runtime, principal, row, cmd, execution_id)
    except RoomlogError as failure:
        await _complete(runtime, principal, target_id, SupportQuickActionCompleted(
            execution_id=execution_id, action_id=action_id, status="failed", message=failure.message,
            error_code=failure.code))
        raise
    await _complete(runtime, principal, target_id, SupportQuickActionCompleted(
        execution_id=execution_id, action_id=action_id, status="succeeded", message=message, result=result))
    return s.Execution(success=True, execution_id=execution_id, action_id=action_id, dry_run=False, changes=changes,
                       result=result, message=message), False


def _target(cmd: s.ExecuteQuickAction, spec: ActionSpec) -> tuple[str, str]:
    """What the execution acts on, (id, "session" | "ticket"): exactly one must be named, one the action acts on."""
    if cmd.session_id is not None and cmd.ticket_id is not None:
        raise ValidationError("name a session or a ticket, not both", field="ticket_id")
    if cmd.ticket_id is not None:
        target_id, target = cmd.ticket_id, "ticket"
    elif cmd.session_id is not None:
        target_id, target = cmd.session_id, "session"
    else:
        raise ValidationError("name the session or the ticket to act on", field="session_id")
    if target not in spec.targets:
        raise ValidationError(f"this action acts on {' and '.join(t + 's' for t in spec.targets)} only",
                              field=f"{target}_id")
    return target_id, target


async def _run_ticket_builtin(
    runtime: Runtime, principal: Principal, action_id: str, params: dict[str, Any], ticket_id: str
) -> tuple[dict[str, Any], str]:
    """Do what a built-in action plans for a ticket, through the tickets' own commands (and their rules)."""
    if action_id == "action_add_note":
        await tickets.add_note(runtime, principal, ticket_id, t.AddNote(content=params["note"]))
        return {"note": params["note"]}, "note added"
    if action_id == "action_canned_reply":
        row = await tickets.comment(runtime, principal, ticket_id, t.AddComment(content=params["text"]))
        return {"status": row["status"]}, "reply sent"
    if action_id == "action_add_tag":
        current = await tickets.load_ticket(runtime, principal, ticket_id)
        row = await tickets.update_ticket(runtime, principal, ticket_id,
                                          t.UpdateTicket(tags=[*current["tags"], params["tag"]]))
        return {"tags": list(row["tags"])}, f"tagged {params['tag']}"
    update = {"action_set_status": t.UpdateTicket(status=params.get("status", msgspec.UNSET)),
              "action_assign": t.UpdateTicket(assigned_to=params.get("agent_id", msgspec.UNSET)),
              "action_set_priority": t.UpdateTicket(priority=params.get("priority", msgspec.UNSET))}[action_id]
    row = await tickets.update_ticket(runtime, principal, ticket_id, update)
    return ({"status": row["status"], "priority": row["priority"], "assigned_to": row["assigned_to"]},
            f"ticket is {row['status']}, {row['priority']}, assigned to {row['assigned_to'] or 'nobody'}")


async def _complete(
    runtime: Runtime, principal: Principal, session_id: str, event: SupportQuickActionCompleted
) -> None:
    await runtime.appender.append(session_id, [event], tenant_id=principal.tenant_id,
                                  metadata=metadata_for(principal))


async def _recorded_outcome(runtime: Runtime, session_id: str, first: SupportQuickActionExecuted) -> s.Execution:
    data = await runtime.pool.fetchval(
        "SELECT data::text FROM events WHERE stream_id = $1 AND type = 'support.quick_action.completed'"
        " AND data->>'execution_id' = $2", session_id, first.execution_id)
    if data is None:
        raise QuickActionInProgress("this execution has not finished (or was interrupted)", field="idempotency_key")
    done = json.loads(data)
    if done["status"] == "failed":
        return s.Execution(success=False, execution_id=first.execution_id, action_id=first.action_id, dry_run=False,
                           changes=first.changes, result={}, message=done["message"])
    return s.Execution(success=True, execution_id=first.execution_id, action_id=first.action_id, dry_run=False,
                       changes=first.changes, result=done.get("result", {}), message=done["message"])


async def _run_builtin(
    runtime: Runtime, principal: Principal, action_id: str, params: dict[str, Any], session: dict[str, Any],
    execution_id: str, *, state: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Do what a built-in action plans, through the same commands the API uses."""
    session_id = session["session_id"]
    if action_id == "action_add_note":
        return {"note": params["note"]}, "note added"
    if action_id == "action_set_status":
        step = SESSION_STATUS_ACTIONS[params["status"]]
        if step == "hold":
            row = await sessions.hold(runtime, principal, session_id)
        elif step == "resume":
            row = await sessions.resume(runtime, principal, session_id)
        else:
            row = await sessions.end(runtime, principal, session_id, s.EndSession(resolution=params["status"]))
        return {"status": row["status"]}, f"session is {row['status']}"
    if action_id == "action_assign":
        row = await sessions.transfer(runtime, principal, session_id,
                                      s.Transfer(target_type="agent", target_id=params["agent_id"]))
        return {"status": row["status"], "agent_id": row["agent_id"]}, f"transferred to {params['agent_id']}"
    if action_id == "action_canned_reply":
        sent = await sessions.send_session_message(runtime, principal, session_id,
                                                   s.SessionMessage(content=params["text"]), state=state)
        return {"message_id": sent.id, "seq": sent.seq}, "reply sent"
    if action_id == "action_add_credit":
        customer = session["customer_id"]
        await runtime.appender.append(
            credit_stream(principal.tenant_id, customer),
            [SupportCreditAdded(customer_id=customer, amount_minor=params["amount_minor"], currency=params["currency"],
                                by=principal.user_id, reason=params["reason"], execution_id=execution_id)],
            tenant_id=principal.tenant_id, metadata=metadata_for(principal), create_stream=True)
        balance = sum(e["amount_minor"] for e in await credit_entries(runtime.pool, principal.tenant_id, customer)
                      if e["currency"] == params["currency"])
        amount = money(params["amount_minor"])
        return ({"customer_id": customer, "amount": amount, "currency": params["currency"],
                 "balance": money(balance)}, f"added {amount} {params['currency']} of store credit")
    raise KeyError(action_id)


async def _call_integration(
    runtime: Runtime, principal: Principal, row: asyncpg.Record, cmd: s.ExecuteQuickAction, execution_id: str
) -> tuple[dict[str, Any], str]:
    """POST the execution to the tenant's endpoint, signed like webhooks; its JSON `result`/`message` back."""
    body = msgspec.json.encode({
        "execution_id": execution_id, "action_id": row["action_id"], "tenant_id": principal.tenant_id,
        "session_id": cmd.session_id, "ticket_id": cmd.ticket_id, "context": cmd.context, "by": principal.user_id,
        "at": datetime.now(UTC).isoformat(),
    })
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-Roomlog-Event": "support.quick_action",
               "X-Roomlog-Delivery": execution_id, "X-Roomlog-Timestamp": str(timestamp),
               "X-Roomlog-Signature": sign(row["secret"], timestamp, body)}
    try:
        answer = await runtime.outbound.post(row["url"], body, headers,
                                              limit_seconds=INTEGRATION_TIMEOUT_SECONDS)
    except (Unreachable, TimeoutError) as failure:
        raise QuickActionFailed(f"the action's endpoint could not be reached ({type(failure).__name__})") from None
    try:
        payload = json.loads(answer.body) if answer.body else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if not answer.ok:
        text = payload.get("message") if isinstance(payload.get("message"), str) else answer.reason
        raise QuickActionFailed(f"the action's endpoint answered {answer.status}: {str(text)[:500]}")
    result = payload.get("result", {})
    if not isinstance(result, dict) or len(msgspec.json.encode(result)) > _RESULT_BYTES:
        result = {}
    message = payload.get("message") if isinstance(payload.get("message"), str) else "done"
    return result, str(message)[:2000]


async def customer_credit(runtime: Runtime, principal: Principal, customer_id: str) -> s.CustomerCredit:
    """A customer's store credit (the desk; a customer its own)."""
    authorize("support.credit.read", principal.role)
    role = await runtime.pool.fetchval("SELECT role FROM users WHERE tenant_id = $1 AND user_id = $2",
                                       principal.tenant_id, customer_id)
    if role != "customer" or (principal.role == "customer" and customer_id != principal.user_id):
        raise UserNotFound("no such customer", field="customer_id")
    entries = await credit_entries(runtime.pool, principal.tenant_id, customer_id)
    balances: dict[str, int] = {}
    for e in entries:
        balances[e["currency"]] = balances.get(e["currency"], 0) + e["amount_minor"]
    return s.CustomerCredit(
        customer_id=customer_id, balances={c: money(v) for c, v in sorted(balances.items())},
        entries=[s.CreditEntry(amount=money(e["amount_minor"]), currency=e["currency"], reason=e["reason"],
                               by=e["by_user"], at=e["created_at"], execution_id=e["execution_id"]) for e in entries],
    )
