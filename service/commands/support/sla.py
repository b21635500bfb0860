"""SLA configuration: calendars and policies saved as versions in the tenant's SLA stream, and their lookup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import msgspec

from eventstore.types import Queryable
from projections import support_sla as read
from schemas import sla as s
from schemas.errors import (
    Conflict,
    SlaCalendarInUse,
    SlaCalendarNotFound,
    SlaPolicyNotFound,
    ValidationError,
    WrongExpectedSeq,
)
from schemas.events import (
    Event,
    SupportSlaCalendarDeleted,
    SupportSlaCalendarSaved,
    SupportSlaPoliciesOrdered,
    SupportSlaPolicyDeleted,
    SupportSlaPolicySaved,
)
from service.commands.metadata import metadata_for
from service.domain.authorization import authorize
from service.domain.support.calendars import Calendar, compile_calendar
from service.domain.support.holidays import MAX_HOLIDAYS, holidays_from_ics
from service.domain.support.sla import match_policy
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

# Two admins saving at once: the loser reads again. More rounds than this means something is wrong.
WRITE_ATTEMPTS = 5
_calendar_decoder = msgspec.json.Decoder(s.BusinessCalendar)
_policy_decoder = msgspec.json.Decoder(s.SlaPolicy)


def sla_stream(tenant_id: str) -> str:
    """The tenant's SLA stream: every calendar and policy version."""
    return f"support-sla:{tenant_id}"


async def _write(runtime: Runtime, principal: Principal,
                 decide: Callable[[Queryable], Awaitable[list[Event]]]) -> None:
    """Decide the events from one snapshot of the SLA read model and append them at the seq it was read at."""
    stream = sla_stream(principal.tenant_id)
    for _ in range(WRITE_ATTEMPTS):
        async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            last_seq = int(await conn.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", stream) or 0)
            events = await decide(conn)
        try:
            await runtime.appender.append(stream, events, tenant_id=principal.tenant_id,
                                          metadata=metadata_for(principal), expected_seq=last_seq,
                                          create_stream=last_seq == 0)
            return
        except WrongExpectedSeq:
            continue
    raise Conflict("the SLA configuration kept changing while this change was made; try again")


def calendar_view(row: asyncpg.Record) -> s.CalendarView:
    """The API view of a calendar row (current or one version)."""
    cal = _calendar_decoder.decode(row["calendar"])
    return s.CalendarView(calendar_id=row["calendar_id"], name=row["name"], version=row["version"],
                          timezone=cal.timezone, periods=list(cal.periods), holidays=list(cal.holidays),
                          updated_by=row["updated_by"], updated_at=row["updated_at"])


def policy_view(row: asyncpg.Record) -> s.PolicyView:
    """The API view of a policy row."""
    pol = _policy_decoder.decode(row["policy"])
    return s.PolicyView(policy_id=row["policy_id"], name=row["name"], version=row["version"], rank=row["rank"],
                        conditions=pol.conditions, targets=pol.targets, calendar_id=pol.calendar_id,
                        at_risk_percent=pol.at_risk_percent, updated_by=row["updated_by"],
                        updated_at=row["updated_at"])


def _checked(body: s.CalendarBody) -> s.BusinessCalendar:
    imported = holidays_from_ics(body.holidays_ics) if body.holidays_ics is not None else []
    calendar = body.calendar(imported)
    if len(calendar.holidays) > MAX_HOLIDAYS:
        raise ValidationError(f"a calendar has at most {MAX_HOLIDAYS} holidays", field="holidays")
    compile_calendar(calendar)  # VALIDATION_ERROR naming the field
    return calendar


async def _require_calendar(conn: Queryable, tenant_id: str, calendar_id: str) -> asyncpg.Record:
    row = await read.fetch_calendar(conn, tenant_id, calendar_id)
    if row is None:
        raise SlaCalendarNotFound("no such calendar", field="calendar_id")
    return row


async def _require_policy(conn: Queryable, tenant_id: str, policy_id: str) -> asyncpg.Record:
    row = await read.fetch_policy(conn, tenant_id, policy_id)
    if row is None:
        raise SlaPolicyNotFound("no such policy", field="policy_id")
    return row


async def create_calendar(runtime: Runtime, principal: Principal, body: s.CalendarBody) -> s.CalendarView:
    """A new calendar, version 1."""
    authorize("support.sla.manage", principal.role)
    calendar, calendar_id = _checked(body), new_id("slacal")

    async def decide(conn: Queryable) -> list[Event]:
        return [SupportSlaCalendarSaved(calendar_id=calendar_id, version=1, name=body.name, calendar=calendar,
                                        by=principal.user_id)]

    await _write(runtime, principal, decide)
    return await get_calendar(runtime, principal.tenant_id, calendar_id)


async def update_calendar(runtime: Runtime, principal: Principal, calendar_id: str,
                          body: s.CalendarBody) -> s.CalendarView:
    """The calendar restated as its next version (policies using it pick it up; tickets keep theirs)."""
    authorize("support.sla.manage", principal.role)
    calendar = _checked(body)

    async def decide(conn: Queryable) -> list[Event]:
        row = await _require_calendar(conn, principal.tenant_id, calendar_id)
        return [SupportSlaCalendarSaved(calendar_id=calendar_id, version=row["version"] + 1, name=body.name,
                                        calendar=calendar, by=principal.user_id)]

    await _write(runtime, principal, decide)
    return await get_calendar(runtime, principal.tenant_id, calendar_id)


async def delete_calendar(runtime: Runtime, principal: Principal, calendar_id: str) -> None:
    """Delete a calendar no live policy uses (409 SLA_CALENDAR_IN_USE otherwise); its versions stay readable."""
    authorize("support.sla.manage", principal.role)

    async def decide(conn: Queryable) -> list[Event]:
        row = await _require_calendar(conn, principal.tenant_id, calendar_id)
        users = await read.policies_using(conn, principal.tenant_id, calendar_id)
        if users:
            raise SlaCalendarInUse(f"policies use this calendar: {', '.join(users)}", field="calendar_id")
        return [SupportSlaCalendarDeleted(calendar_id=calendar_id, version=row["version"] + 1, by=principal.user_id)]

    await _write(runtime, principal, decide)


async def get_calendar(runtime: Runtime, tenant_id: str, calendar_id: str) -> s.CalendarView:
    """One live calendar, or SLA_CALENDAR_NOT_FOUND."""
    async with runtime.pool.acquire() as conn:
        return calendar_view(await _require_calendar(conn, tenant_id, calendar_id))


async def list_calendars(runtime: Runtime, tenant_id: str) -> list[s.CalendarView]:
    """The tenant's live calendars."""
    return [calendar_view(r) for r in await read.list_calendars(runtime.pool, tenant_id)]


async def create_policy(runtime: Runtime, principal: Principal, body: s.PolicyBody) -> s.PolicyView:
    """A new policy, version 1, matched after every existing one."""
    authorize("support.sla.manage", principal.role)
    policy_id = new_id("slapol")

    async def decide(conn: Queryable) -> list[Event]:
        if body.calendar_id is not None:
            await _require_calendar(conn, principal.tenant_id, body.calendar_id)
        ranks = [r["rank"] for r in await read.list_policies(conn, principal.tenant_id)]
        return [SupportSlaPolicySaved(policy_id=policy_id, version=1, name=body.name, rank=max(ranks, default=-1) + 1,
                                      policy=body.policy(), by=principal.user_id)]

    await _write(runtime, principal, decide)
    return await get_policy(runtime, principal.tenant_id, policy_id)


async def update_policy(runtime: Runtime, principal: Principal, policy_id: str, body: s.PolicyBody) -> s.PolicyView:
    """The policy restated as its next version, keeping its place in the order."""
    authorize("support.sla.manage", principal.role)

    async def decide(conn: Queryable) -> list[Event]:
        row = await _require_policy(conn, principal.tenant_id, policy_id)
        if body.calendar_id is not None:
            await _require_calendar(conn, principal.tenant_id, body.calendar_id)
        return [SupportSlaPolicySaved(policy_id=policy_id, version=row["version"] + 1, name=body.name,
                                      rank=row["rank"], policy=body.policy(), by=principal.user_id)]

    await _write(runtime, principal, decide)
    return await get_policy(runtime, principal.tenant_id, policy_id)


async def delete_policy(runtime: Runtime, principal: Principal, policy_id: str) -> None:
    """Delete a policy; tickets it was applied to keep the version they have."""
    authorize("support.sla.manage", principal.role)

    async def decide(conn: Queryable) -> list[Event]:
        row = await _require_policy(conn, principal.tenant_id, policy_id)
        return [SupportSlaPolicyDeleted(policy_id=policy_id, version=row["version"] + 1, by=principal.user_id)]

    await _write(runtime, principal, decide)


async def order_policies(runtime: Runtime, principal: Principal, body: s.PolicyOrder) -> list[s.PolicyView]:
    """Set the matching order: `policy_ids` must name every live policy exactly once."""
    authorize("support.sla.manage", principal.role)

    async def decide(conn: Queryable) -> list[Event]:
        live = {r["policy_id"] for r in await read.list_policies(conn, principal.tenant_id)}
        if len(set(body.policy_ids)) != len(body.policy_ids) or set(body.policy_ids) != live:
            raise ValidationError("policy_ids must list every policy exactly once", field="policy_ids")
        return [SupportSlaPoliciesOrdered(policy_ids=list(body.policy_ids), by=principal.user_id)]

    await _write(runtime, principal, decide)
    return await list_policies(runtime, principal.tenant_id)


async def get_policy(runtime: Runtime, tenant_id: str, policy_id: str) -> s.PolicyView:
    """One live policy, or SLA_POLICY_NOT_FOUND."""
    async with runtime.pool.acquire() as conn:
        return policy_view(await _require_policy(conn, tenant_id, policy_id))


async def list_policies(runtime: Runtime, tenant_id: str) -> list[s.PolicyView]:
    """The tenant's live policies in matching order."""
    return [policy_view(r) for r in await read.list_policies(runtime.pool, tenant_id)]


@dataclass(frozen=True)
class AppliedSla:
    """The exact policy and calendar versions a ticket's clock runs on (what a ticket records when applied)."""

    policy_id: str
    policy_version: int
    policy: s.SlaPolicy
    calendar_version: int | None  # None: 24/7
    calendar: Calendar | None


async def match(runtime: Runtime, tenant_id: str, *, priority: str | None, category: str | None,
                channel: str | None) -> AppliedSla:
    """The first policy, in order, matching these ticket attributes, with its current calendar version."""
    async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await read.list_policies(conn, tenant_id)
        ordered = [(r, _policy_decoder.decode(r["policy"])) for r in rows]
        found = match_policy(ordered, priority=priority, category=category, channel=channel)
        if found is None:
            raise SlaPolicyNotFound("no policy matches", field="policy_id")
        policy = _policy_decoder.decode(found["policy"])
        calendar_version = None
        if policy.calendar_id is not None:
            calendar_version = await read.last_calendar_version(conn, tenant_id, policy.calendar_id)
        return await applied(runtime, tenant_id, found["policy_id"], found["version"], calendar_version, conn=conn)


async def applied(runtime: Runtime, tenant_id: str, policy_id: str, policy_version: int,
                  calendar_version: int | None, *, conn: Queryable | None = None) -> AppliedSla:
    """A recorded (policy version, calendar version) loaded back exactly, whatever changed since."""
    db = conn or runtime.pool
    row = await read.fetch_policy_version(db, tenant_id, policy_id, policy_version)
    if row is None:
        raise SlaPolicyNotFound("no such policy version", field="policy_id")
    policy = _policy_decoder.decode(row["policy"])
    calendar = None
    if policy.calendar_id is not None and calendar_version is not None:
        cal_row = await read.fetch_calendar_version(db, tenant_id, policy.calendar_id, calendar_version)
        if cal_row is None:
            raise SlaCalendarNotFound("no such calendar version", field="calendar_id")
        calendar = compile_calendar(_calendar_decoder.decode(cal_row["calendar"]))
    return AppliedSla(policy_id, policy_version, policy, calendar_version, calendar)
