"""Holidays from an iCalendar (RFC 5545) file: the local dates its all-day events cover, recurrences included."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar
from dateutil.rrule import rrulestr

from schemas.errors import ValidationError

# As many holidays as a calendar holds (schemas/sla.py), and how far a recurring one is repeated.
MAX_HOLIDAYS = 1000
RECURRENCE_YEARS = 10
# A multi-day event longer than this is not a holiday but a mistake (a year-long "closed" block, say).
MAX_EVENT_DAYS = 31
_FIELD = "holidays_ics"
_FREQUENCIES = frozenset({"YEARLY", "MONTHLY", "WEEKLY", "DAILY"})


def holidays_from_ics(text: str) -> list[date]:
    """The dates the file's all-day events cover (DTEND exclusive; RRULE repeated for RECURRENCE_YEARS, minus
    EXDATE), sorted and once each; events with a time of day are not holidays and are left out. A file that is
    not iCalendar, or names too many dates, is a 400 naming `holidays_ics`."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValidationError(f"holidays_ics is not an iCalendar file: {exc}", field=_FIELD) from None
    found: set[date] = set()
    for event in calendar.walk("VEVENT"):
        found.update(_event_dates(event))
        if len(found) > MAX_HOLIDAYS:
            raise ValidationError(f"holidays_ics names more than {MAX_HOLIDAYS} dates", field=_FIELD)
    return sorted(found)


def _event_dates(event: icalendar.Component) -> set[date]:
    start = _date_of(event, "DTSTART")
    if start is None:
        return set()
    end = _date_of(event, "DTEND")
    days = max(1, (end - start).days) if end is not None else 1
    if days > MAX_EVENT_DAYS:
        raise ValidationError(f"an all-day event of holidays_ics spans more than {MAX_EVENT_DAYS} days",
                              field=_FIELD)
    firsts = _occurrences(event, start)
    return {first + timedelta(days=n) for first in firsts for n in range(days)}


def _date_of(event: icalendar.Component, name: str) -> date | None:
    """The property's value when it is a date (an all-day event); None when absent or a date and time."""
    prop = event.get(name)
    if prop is None:
        return None
    value = prop.dt
    return None if isinstance(value, datetime) or not isinstance(value, date) else value


def _occurrences(event: icalendar.Component, start: date) -> set[date]:
    rule = event.get("RRULE")
    if rule is None:
        return {start}
    if not set(rule.get("FREQ", [])) <= _FREQUENCIES:
        raise ValidationError("holidays_ics repeats an event more often than daily", field=_FIELD)
    until = start.replace(year=start.year + RECURRENCE_YEARS) if (start.month, start.day) != (2, 29) else \
        start + timedelta(days=365 * RECURRENCE_YEARS)
    try:
        dates = rrulestr(rule.to_ical().decode(), dtstart=datetime.combine(start, datetime.min.time()))
        firsts = {d.date() for d in dates.between(datetime.combine(start, datetime.min.time()),
                                                  datetime.combine(until, datetime.min.time()), inc=True)}
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"holidays_ics has a recurrence rule that cannot be read: {exc}", field=_FIELD) from None
    for excluded in _exdates(event):
        firsts.discard(excluded)
    return firsts


def _exdates(event: icalendar.Component) -> set[date]:
    props = event.get("EXDATE")
    if props is None:
        return set()
    out: set[date] = set()
    for prop in props if isinstance(props, list) else [props]:
        for value in prop.dts:
            out.add(value.dt.date() if isinstance(value.dt, datetime) else value.dt)
    return out
