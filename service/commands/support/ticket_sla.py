"""Tickets' SLA clocks: apply the matching policy to a new ticket, fold the clock after each ticket change and
record what the breach timer follows; re-apply the current policies on request.

The fold reads the ticket's whole stream (its clock events, the applied versions, the clocks recorded so far)
and appends the changes at the seq it read, so racing writers (or the timer) make it read and fold again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from eventstore.read import read_stream
from schemas.errors import SlaPolicyNotFound, WrongExpectedSeq
from schemas.events import RecordedEvent, SupportTicketCreated, SupportTicketSlaApplied
from service.commands.metadata import metadata_for
from service.commands.support import sla as sla_config
from service.domain.authorization import authorize
from service.domain.support.sla import fold_clock
from service.domain.support.ticket_sla import applied_sla, clock_events, fold_instant, sla_changes
from service.identity.auth import Principal

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.tickets")
FOLD_ATTEMPTS = 10
_STREAM_LIMIT = 1_000_000  # a ticket's whole stream; tickets are small


async def _match(runtime: Runtime, tenant_id: str, events: list[RecordedEvent],
                 row: dict[str, object]) -> sla_config.AppliedSla | None:
    """The first policy, in order, matching the ticket's current priority and category (and its session's
    channel); None when none does."""
    created = events[0].event
    assert isinstance(created, SupportTicketCreated)
    channel = None
    if created.session_id is not None:
        channel = await runtime.pool.fetchval("SELECT channel FROM support_sessions WHERE session_id = $1",
                                              created.session_id)
    try:
        return await sla_config.match(runtime, tenant_id, priority=str(row["priority"]),
                                      category=row["category"],  # type: ignore[arg-type]
                                      channel=channel)
    except SlaPolicyNotFound:
        return None


async def settle(runtime: Runtime, principal: Principal, ticket_id: str, *, apply: bool = False,
                 reapply: bool = False) -> bool:
    """Fold the ticket's clock and append what changed; with `apply`, first match a policy if none is applied,
    with `reapply`, match again whatever was applied. False when the ticket has no policy (none matched)."""
    tenant_id = principal.tenant_id
    for _ in range(FOLD_ATTEMPTS):
        events = await read_stream(runtime.pool, ticket_id, limit=_STREAM_LIMIT)
        row = await runtime.pool.fetchrow("SELECT priority, category FROM support_tickets WHERE ticket_id = $1",
                                          ticket_id)
        if not events or row is None:
            return False
        recorded = applied_sla(events)
        applying: list[SupportTicketSlaApplied] = []
        if reapply or (apply and recorded is None):
            found = await _match(runtime, tenant_id, events, dict(row))
            if found is None:
                if reapply:
                    raise SlaPolicyNotFound("no SLA policy matches the ticket", field="ticket_id")
                return False
            applying.append(SupportTicketSlaApplied(
                policy_id=found.policy_id, policy_version=found.policy_version, calendar_id=found.policy.calendar_id,
                calendar_version=found.calendar_version, by=principal.user_id, reapplied=reapply))
            sla = found
        elif recorded is None:
            return False
        else:
            sla = await sla_config.applied(runtime, tenant_id, recorded.policy_id, recorded.policy_version,
                                           recorded.calendar_version)
        clock = fold_clock(clock_events(events), sla.policy, sla.calendar,
                           fold_instant(events, runtime.wall_clock()))
        changes = [*applying, *sla_changes(events, clock)]
        if not changes:
            return True
        try:
            await runtime.appender.append(ticket_id, changes, tenant_id=tenant_id,
                                          metadata=metadata_for(principal),
                                          expected_seq=events[-1].seq)
            return True
        except WrongExpectedSeq:
            continue  # another change (or the timer) got there first: fold what is there now
    log.warning("ticket sla fold kept losing races", ticket_id=ticket_id)
    return True


async def after_change(runtime: Runtime, principal: Principal, ticket_id: str, *, created: bool = False) -> None:
    """Keep the clock in step after a ticket event; the ticket's change is durable already, so a failure here is
    logged (the next change of the ticket folds again) rather than failing the request."""
    try:
        await settle(runtime, principal, ticket_id, apply=created)
    except Exception:
        log.exception("ticket sla fold failed", ticket_id=ticket_id)


async def reapply(runtime: Runtime, principal: Principal, ticket_id: str) -> None:
    """Match the tenant's current policies against the ticket again and record the versions (agents, admins)."""
    authorize("support.ticket.work", principal.role)
    await settle(runtime, principal, ticket_id, reapply=True)
