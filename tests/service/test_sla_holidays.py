"""Holidays imported from iCalendar files: all-day events, multi-day spans, yearly rules with exceptions, and the
errors; over HTTP, a calendar saved with `holidays_ics` holds them beside its own."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from schemas.errors import ValidationError
from service.domain.support.holidays import holidays_from_ics
from tests.conftest import Tenant, error_of

WEEK = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]


def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\nUID:{n}@roomlog.test\r\nDTSTAMP:20260101T000000Z\r\n{e}END:VEVENT\r\n"
                   for n, e in enumerate(events))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//roomlog//test//EN\r\n{body}END:VCALENDAR\r\n"


def test_all_day_events_are_holidays_with_dtend_exclusive_and_timed_events_are_not() -> None:
    text = ics("SUMMARY:New Year\r\nDTSTART;VALUE=DATE:20270101\r\n",
               "SUMMARY:Closed for inventory\r\nDTSTART;VALUE=DATE:20260803\r\nDTEND;VALUE=DATE:20260806\r\n",
               "SUMMARY:Team lunch\r\nDTSTART:20260710T120000Z\r\nDTEND:20260710T130000Z\r\n")
    assert holidays_from_ics(text) == [date(2026, 8, 3), date(2026, 8, 4), date(2026, 8, 5), date(2027, 1, 1)]


def test_a_yearly_rule_repeats_for_ten_years_less_its_exceptions() -> None:
    text = ics("SUMMARY:Christmas\r\nDTSTART;VALUE=DATE:20261225\r\nRRULE:FREQ=YEARLY\r\n"
               "EXDATE;VALUE=DATE:20281225\r\n",
               "SUMMARY:Boxing day twice\r\nDTSTART;VALUE=DATE:20261226\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n")
    christmases = [date(year, 12, 25) for year in range(2026, 2037) if year != 2028]
    assert holidays_from_ics(text) == sorted([*christmases, date(2026, 12, 26), date(2027, 12, 26)])


@pytest.mark.parametrize("text", [
    "not a calendar",
    ics("DTSTART;VALUE=DATE:20260101\r\nDTEND;VALUE=DATE:20270101\r\n"),  # a year "closed"
    ics("DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=HOURLY\r\n"),
    ics("DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=DAILY\r\n"),  # 3,650 dates
])
def test_a_file_that_is_not_a_sound_holiday_list_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        holidays_from_ics(text)
    assert raised.value.field == "holidays_ics"


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_calendar_saved_with_an_ics_file_holds_its_holidays_beside_its_own(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.as_user("admin")
    text = ics("SUMMARY:Christmas Eve\r\nDTSTART;VALUE=DATE:20261224\r\n",
               "SUMMARY:Christmas\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\n")
    body = {"name": "Berlin", "timezone": "Europe/Berlin", "periods": WEEK, "holidays": ["2026-12-31", "2026-12-24"],
            "holidays_ics": text}
    made = await ok(await client.post("/support/sla/calendars", json=body, headers=admin), 201)
    assert made["holidays"] == ["2026-12-24", "2026-12-25", "2026-12-26", "2026-12-31"]
    wrong = await client.put(f"/support/sla/calendars/{made['calendar_id']}", headers=admin,
                             json={**body, "holidays_ics": "BEGIN:VCALENDAR"})
    assert error_of(wrong, 400)["field"] == "holidays_ics"
