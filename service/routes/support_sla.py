"""SLA configuration under /support/sla: business-hours calendars and policies (admins write, agents read)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas import sla as s
from schemas.errors import (
    Forbidden,
    NotTenantAdmin,
    SlaCalendarInUse,
    SlaCalendarNotFound,
    SlaPolicyNotFound,
)
from service.commands.support import sla as commands
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, caller_may, runtime_of


async def get_calendars(request: Request) -> Response:
    principal = await caller_may(request, "support.sla.read")
    return JSON(await commands.list_calendars(runtime_of(request), principal.tenant_id))


async def post_calendar(request: Request) -> Response:
    principal = await caller(request)
    body = await body_as(request, s.CalendarBody)
    return JSON(await commands.create_calendar(runtime_of(request), principal, body), status_code=201)


async def put_calendar(request: Request) -> Response:
    principal = await caller(request)
    body = await body_as(request, s.CalendarBody)
    calendar_id = request.path_params["calendar_id"]
    return JSON(await commands.update_calendar(runtime_of(request), principal, calendar_id, body))


async def delete_calendar(request: Request) -> Response:
    principal = await caller(request)
    await commands.delete_calendar(runtime_of(request), principal, request.path_params["calendar_id"])
    return JSON(api.Success())


async def get_policies(request: Request) -> Response:
    principal = await caller_may(request, "support.sla.read")
    return JSON(await commands.list_policies(runtime_of(request), principal.tenant_id))


async def post_policy(request: Request) -> Response:
    principal = await caller(request)
    body = await body_as(request, s.PolicyBody)
    return JSON(await commands.create_policy(runtime_of(request), principal, body), status_code=201)


async def put_policy(request: Request) -> Response:
    principal = await caller(request)
    body = await body_as(request, s.PolicyBody)
    policy_id = request.path_params["policy_id"]
    return JSON(await commands.update_policy(runtime_of(request), principal, policy_id, body))


async def delete_policy(request: Request) -> Response:
    principal = await caller(request)
    await commands.delete_policy(runtime_of(request), principal, request.path_params["policy_id"])
    return JSON(api.Success())


async def put_policy_order(request: Request) -> Response:
    principal = await caller(request)
    body = await body_as(request, s.PolicyOrder)
    return JSON(await commands.order_policies(runtime_of(request), principal, body))


async def post_match(request: Request) -> Response:
    principal = await caller_may(request, "support.sla.read")
    body = await body_as(request, s.SlaMatchBody)
    found = await commands.match(runtime_of(request), principal.tenant_id, priority=body.priority,
                                 category=body.category, channel=body.channel)
    return JSON(s.SlaMatch(policy_id=found.policy_id, policy_version=found.policy_version,
                           calendar_id=found.policy.calendar_id, calendar_version=found.calendar_version))


_CALENDAR = "/support/sla/calendars/{calendar_id}"
_POLICY = "/support/sla/policies/{policy_id}"

ENDPOINTS = [
    Endpoint("GET", "/support/sla/calendars", get_calendars, "The tenant's business-hours calendars",
             response=list[s.CalendarView], errors=(Forbidden,)),
    Endpoint("POST", "/support/sla/calendars", post_calendar,
             "Create a business-hours calendar: IANA timezone, working periods per weekday, holidays (admins)",
             body=s.CalendarBody, response=s.CalendarView, status=201, errors=(NotTenantAdmin,)),
    Endpoint("PUT", _CALENDAR, put_calendar, "Save a calendar's next version (admins)", body=s.CalendarBody,
             response=s.CalendarView, errors=(NotTenantAdmin, SlaCalendarNotFound)),
    Endpoint("DELETE", _CALENDAR, delete_calendar, "Delete a calendar no policy uses (admins)",
             response=api.Success, errors=(NotTenantAdmin, SlaCalendarNotFound, SlaCalendarInUse)),
    Endpoint("GET", "/support/sla/policies", get_policies, "The tenant's SLA policies in matching order",
             response=list[s.PolicyView], errors=(Forbidden,)),
    Endpoint("POST", "/support/sla/policies", post_policy,
             "Create an SLA policy, matched after the existing ones (admins)", body=s.PolicyBody,
             response=s.PolicyView, status=201, errors=(NotTenantAdmin, SlaCalendarNotFound)),
    Endpoint("PUT", _POLICY, put_policy, "Save a policy's next version (admins)", body=s.PolicyBody,
             response=s.PolicyView, errors=(NotTenantAdmin, SlaPolicyNotFound, SlaCalendarNotFound)),
    Endpoint("DELETE", _POLICY, delete_policy, "Delete a policy (admins)", response=api.Success,
             errors=(NotTenantAdmin, SlaPolicyNotFound)),
    Endpoint("PUT", "/support/sla/policy-order", put_policy_order,
             "Set the order policies are matched in: every policy id once (admins)", body=s.PolicyOrder,
             response=list[s.PolicyView], errors=(NotTenantAdmin,)),
    Endpoint("POST", "/support/sla/match", post_match,
             "The policy and calendar versions a ticket with these attributes gets: the first match in order",
             body=s.SlaMatchBody, response=s.SlaMatch, errors=(Forbidden, SlaPolicyNotFound)),
]
