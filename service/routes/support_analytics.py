"""Support analytics (seed 001 "Analytics", under /support): the desk's figures for a period."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import analytics as a
from schemas.errors import Forbidden, ValidationError
from service.commands.support import analytics as commands
from service.domain.support.analytics import GROUPS, parse_date, today, zone
from service.web.endpoints import ChoiceQuery, Endpoint, TextQuery
from service.web.request import JSON, caller_may, runtime_of

START = TextQuery("start_date", "the first local date reported on (YYYY-MM-DD; default: today)", max_length=10,
                  required=False)
END = TextQuery("end_date", "the last local date reported on, included (YYYY-MM-DD; default: today; at most 366 days"
                " after start_date)", max_length=10, required=False)
GROUP_BY = ChoiceQuery("group_by", "the series' buckets of local time (hour: periods of up to 31 days)", GROUPS,
                       default="day")
TIMEZONE = TextQuery("timezone", "the IANA timezone of the dates and buckets (default UTC)", max_length=64,
                     required=False)


async def get_analytics(request: Request) -> Response:
    principal = await caller_may(request, "support.analytics.read")
    runtime = runtime_of(request)
    tz = zone(TIMEZONE.read(request) or "UTC")
    now = today(runtime.wall_clock(), tz)
    start = parse_date(START.read(request), field="start_date", default=now)
    end = parse_date(END.read(request), field="end_date", default=max(start, now))
    group_by = GROUP_BY.read(request)
    assert group_by is not None
    async with runtime.pool.acquire() as conn:
        figures = await commands.report(conn, principal.tenant_id, start=start, end=end, tz=tz, group_by=group_by,
                                        reopen_days=runtime.settings.support_fcr_reopen_days)
    return JSON(figures)


ENDPOINTS = [
    Endpoint("GET", "/support/analytics", get_analytics,
             "The desk's figures for sessions and tickets created in a period: summary, by channel, category and"
             " agent, SLA compliance and a series (agents and admins; from a projection a moment behind the log)",
             response=a.SupportAnalytics, errors=(Forbidden, ValidationError), query=(START, END, GROUP_BY, TIMEZONE)),
]
