"""Quick actions: the built-in registry, and the pure checks and plans of an execution.

An execution is decided before anything changes: its context must hold every `required_context` key, its
values must make sense for the action (a known status, a positive amount), and the plan — the changes in
words — is what a dry run answers and what the recorded execution keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from schemas.errors import ValidationError
from service.domain.support.tickets import next_status

MAX_CREDIT_MINOR = 100_000_00  # one grant of store credit: at most 100,000.00 in any currency
CANNED_REPLY_CHARACTERS = 4000
NOTE_CHARACTERS = 4000
# What a session's status can be set to by the status action, and the session action that does it.
SESSION_STATUS_ACTIONS = {"on_hold": "hold", "active": "resume", "resolved": "end", "closed": "end"}
# What a ticket's status can be set to by the status action (the status machine decides which apply now).
TICKET_STATUSES = ("open", "pending", "on_hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TAG_CHARACTERS = 64
MAX_TAGS = 50
BOTH = ("session", "ticket")


@dataclass(frozen=True)
class ActionSpec:
    id: str
    name: str
    description: str
    required_context: tuple[str, ...]
    permissions: tuple[str, ...]
    targets: tuple[str, ...] = ("session",)


BUILTINS: dict[str, ActionSpec] = {a.id: a for a in (
    ActionSpec("action_add_note", "Add internal note",
               "Record a note on the session or ticket that customers never see", ("note",), ("agent", "admin"),
               BOTH),
    ActionSpec("action_set_status", "Set status",
               "Put the session on hold, resume it, or end it (resolved/closed); or set the ticket's status",
               ("status",), ("agent", "admin"), BOTH),
    ActionSpec("action_assign", "Assign to agent", "Hand the session, or assign the ticket, to a desk agent",
               ("agent_id",), ("agent", "admin"), BOTH),
    ActionSpec("action_set_priority", "Set priority", "Set the ticket's priority (low, normal, high, urgent)",
               ("priority",), ("agent", "admin"), ("ticket",)),
    ActionSpec("action_add_tag", "Add tag", "Add a tag to the ticket", ("tag",), ("agent", "admin"), ("ticket",)),
    ActionSpec("action_canned_reply", "Send canned reply",
               "Send a prepared reply to the customer as yourself (on a ticket: a public comment)",
               ("text",), ("agent", "admin"), BOTH),
    ActionSpec("action_add_credit", "Add store credit", "Add credit to the customer's account (a ledger entry)",
               ("amount",), ("admin",)),
)}


def missing_context(required: tuple[str, ...] | list[str], context: dict[str, Any]) -> str | None:
    """The first required key the context lacks (or holds as null/empty), if any."""
    for key in required:
        if context.get(key) in (None, ""):
            return key
    return None


def _text(context: dict[str, Any], key: str, limit: int) -> str:
    value = context.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise ValidationError(f"{key} must be text of 1 to {limit} characters", field=f"context.{key}")
    return value


def credit_minor(amount: Any, currency: str = "USD") -> int:
    """An amount (a number or decimal string, at most two decimals) in minor units; a 400 when it is not one."""
    try:
        value = Decimal(str(amount)) if isinstance(amount, int | float | str) and not isinstance(amount, bool) \
            else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValidationError("amount must be a number with at most two decimals", field="context.amount")
    minor = int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if not 0 < minor <= MAX_CREDIT_MINOR:
        raise ValidationError(f"amount must be above 0 and at most {MAX_CREDIT_MINOR // 100:,}",
                              field="context.amount")
    return minor


def money(minor: int) -> str:
    """Minor units as a decimal string: 2599 → "25.99"."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def currency_of(context: dict[str, Any]) -> str:
    value = context.get("currency", "USD")
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise ValidationError("currency must be a three-letter code such as USD", field="context.currency")
    return value.upper()


@dataclass(frozen=True)
class Plan:
    """A built-in execution, checked: what it will change, in words, and its parameters."""

    changes: list[str]
    params: dict[str, Any]


def plan_builtin(action_id: str, context: dict[str, Any], session: dict[str, Any]) -> Plan:
    """Check a built-in action's context against the session and say what it would change."""
    session_id = session["session_id"]
    if action_id == "action_add_note":
        note = _text(context, "note", NOTE_CHARACTERS)
        return Plan([f"add an internal note to {session_id}"], {"note": note})
    if action_id == "action_set_status":
        status = context.get("status")
        if status not in SESSION_STATUS_ACTIONS:
            raise ValidationError(f"status must be one of {', '.join(SESSION_STATUS_ACTIONS)}", field="context.status")
        return Plan([f"status of {session_id}: {session['status']} → {status}"], {"status": status})
    if action_id == "action_assign":
        agent_id = _text(context, "agent_id", 128)
        return Plan([f"transfer {session_id} to agent {agent_id}"], {"agent_id": agent_id})
    if action_id == "action_canned_reply":
        text = _text(context, "text", CANNED_REPLY_CHARACTERS)
        return Plan([f"send a reply in {session_id}: {text[:80]}"], {"text": text})
    if action_id == "action_add_credit":
        currency = currency_of(context)
        minor = credit_minor(context.get("amount"))
        reason = context.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise ValidationError("reason must be text of at most 500 characters", field="context.reason")
        return Plan([f"add {money(minor)} {currency} of store credit to {session['customer_id']}"],
                    {"amount_minor": minor, "currency": currency, "reason": reason})
    raise KeyError(action_id)


def plan_ticket_builtin(action_id: str, context: dict[str, Any], ticket: dict[str, Any]) -> Plan:
    """Check a built-in action's context against the ticket (its status rules included) and say what it would
    change."""
    ticket_id, status, assignee = ticket["ticket_id"], ticket["status"], ticket["assigned_to"]
    next_status(status, None, assignee=assignee, assigning=False)  # closed is final: TICKET_CLOSED
    if action_id == "action_add_note":
        return Plan([f"add an internal note to {ticket_id}"], {"note": _text(context, "note", NOTE_CHARACTERS)})
    if action_id == "action_set_status":
        target = context.get("status")
        if target not in TICKET_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(TICKET_STATUSES)}", field="context.status")
        next_status(status, target, assignee=assignee, assigning=False)  # INVALID_TRANSITION with `allowed`
        return Plan([f"status of {ticket_id}: {status} → {target}"], {"status": target})
    if action_id == "action_assign":
        agent_id = _text(context, "agent_id", 128)
        return Plan([f"assign {ticket_id} to agent {agent_id}"], {"agent_id": agent_id})
    if action_id == "action_set_priority":
        priority = context.get("priority")
        if priority not in PRIORITIES:
            raise ValidationError(f"priority must be one of {', '.join(PRIORITIES)}", field="context.priority")
        return Plan([f"priority of {ticket_id}: {ticket['priority']} → {priority}"], {"priority": priority})
    if action_id == "action_add_tag":
        tag = _text(context, "tag", TAG_CHARACTERS)
        if any(c.isspace() for c in tag):
            raise ValidationError("a tag has no spaces", field="context.tag")
        if tag not in ticket["tags"] and len(ticket["tags"]) >= MAX_TAGS:
            raise ValidationError(f"a ticket has at most {MAX_TAGS} tags", field="context.tag")
        return Plan([f"tag {ticket_id} with {tag}"], {"tag": tag})
    if action_id == "action_canned_reply":
        text = _text(context, "text", CANNED_REPLY_CHARACTERS)
        return Plan([f"reply publicly on {ticket_id}: {text[:80]}"], {"text": text})
    raise KeyError(action_id)
