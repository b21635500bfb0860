"""Business-hours arithmetic: examples across DST and midnight, and a minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import ValidationError
from schemas.sla import WEEKDAYS, BusinessCalendar, WorkingPeriod
from service.domain.support.calendars import add_business_time, business_time_between, compile_calendar

# Each zone with the days it changes its offset in 2026 (and an ordinary day). Lord Howe moves by 30
# minutes; Adelaide (+9:30/+10:30) changes at half past a UTC hour.
_SOUTH = [date(2026, 4, 5), date(2026, 10, 4)]
ZONES: dict[str, list[date]] = {
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Lord_Howe": _SOUTH,
    "Australia/Adelaide": _SOUTH,
    "Asia/Kolkata": [date(2026, 6, 15)],
    "UTC": [date(2026, 6, 15)],
}
MINUTE = timedelta(minutes=1)


def every_day(start: str, end: str, *, zone: str = "Europe/Berlin") -> BusinessCalendar:
    return BusinessCalendar(timezone=zone, periods=tuple(WorkingPeriod(d, start, end) for d in WEEKDAYS))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# --- the reference: one minute at a time, straight from the definition --------------------------------

def is_working(calendar: BusinessCalendar, instant: datetime) -> bool:
    """Whether the minute starting at `instant` is working time (local wall clock in a period, no holiday)."""
    wall = instant.astimezone(ZoneInfo(calendar.timezone))
    if wall.date() in calendar.holidays:
        return False
    minute = wall.hour * 60 + wall.minute
    day = WEEKDAYS[wall.weekday()]
    return any(p.day == day and int(p.start[:2]) * 60 + int(p.start[3:]) <= minute
               < int(p.end[:2]) * 60 + int(p.end[3:]) for p in calendar.periods)


def reference_add(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    counted, t = 0, start
    while counted < minutes:
        counted += is_working(calendar, t)
        t += MINUTE
    return t  # the end of the minute that completed the count


def reference_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    t, counted = a, 0
    while t < b:
        counted += is_working(calendar, t)
        t += MINUTE
    return timedelta(minutes=counted)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def calendars(draw: st.DrawFn) -> tuple[BusinessCalendar, date]:
    """A random calendar and a day near which its zone changes offset."""
    zone = draw(st.sampled_from(sorted(ZONES)))
    base = draw(st.sampled_from(ZONES[zone]))
    periods = []
    for day in WEEKDAYS:
        for _ in range(draw(st.integers(0, 3))):
            # Often near the small hours, where the offsets change.
            start = draw(st.integers(0, 1439) | st.integers(0, 240))
            end = draw(st.integers(start + 1, min(1440, start + 600)) | st.integers(start + 1, min(1440, start + 90)))
            periods.append(WorkingPeriod(day, hhmm(start), hhmm(end)))
    if not periods:
        periods.append(WorkingPeriod(draw(st.sampled_from(WEEKDAYS)), "09:00", "17:00"))
    holidays = draw(st.lists(st.integers(-3, 10).map(lambda n: base + timedelta(days=n)), max_size=3, unique=True))
    return BusinessCalendar(timezone=zone, periods=tuple(periods), holidays=tuple(holidays)), base


def instants_near(base: date) -> st.SearchStrategy[datetime]:
    day = datetime(base.year, base.month, base.day, tzinfo=UTC)
    return st.integers(-3 * 1440, 3 * 1440).map(lambda n: day + timedelta(minutes=n))


def weekly_minutes(calendar: BusinessCalendar) -> int:
    return sum(len({m for p in calendar.periods if p.day == d
                    for m in range(int(p.start[:2]) * 60 + int(p.start[3:]), int(p.end[:2]) * 60 + int(p.end[3:]))})
               for d in WEEKDAYS)


# --- examples ------------------------------------------------------------------------------------------

def test_spring_forward_skips_the_missing_hour() -> None:
    cal = compile_calendar(every_day("01:00", "05:00"))
    day_start = local("Europe/Berlin", 2026, 3, 29, 0, 0)
    assert business_time_between(day_start, day_start + timedelta(days=1), cal) == timedelta(hours=3)


def test_fall_back_counts_the_repeated_hour_twice() -> None:
    cal = compile_calendar(every_day("01:00", "05:00"))
    day_start = local("Europe/Berlin", 2026, 10, 25, 0, 0)
    assert business_time_between(day_start, day_start + timedelta(days=1), cal) == timedelta(hours=5)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 4, 5), 5), (date(2026, 10, 4), 3)])
def test_a_change_at_half_past_a_utc_hour_is_found_to_the_minute(day: date, hours: int) -> None:
    cal = compile_calendar(every_day("01:00", "05:00", zone="Australia/Adelaide"))
    day_start = local("Australia/Adelaide", day.year, day.month, day.day, 0, 0)
    assert business_time_between(day_start, day_start + timedelta(days=1), cal) == timedelta(hours=hours)
    short = every_day("02:10", "02:40", zone="Australia/Adelaide")
    assert business_time_between(day_start, day_start + timedelta(days=1), compile_calendar(short)) == \
        reference_between(short, day_start, day_start + timedelta(days=1))
    # Working time runs on unbroken from 01:00 local through the change.
    assert add_business_time(day_start, timedelta(minutes=150), cal) == day_start + timedelta(minutes=210)


def test_adding_business_time_crosses_midnight_between_periods() -> None:
    cal = compile_calendar(BusinessCalendar(
        timezone="America/New_York",
        periods=tuple(WorkingPeriod(d, s, e) for d in WEEKDAYS for s, e in (("00:00", "02:00"), ("22:00", "24:00"))),
    ))
    start = local("America/New_York", 2026, 6, 12, 23, 0)
    assert add_business_time(start, timedelta(hours=2), cal) == local("America/New_York", 2026, 6, 13, 1, 0)


def test_holidays_and_weekends_hold_no_working_time() -> None:
    cal = compile_calendar(BusinessCalendar(
        timezone="Europe/Berlin",
        periods=tuple(WorkingPeriod(d, "09:00", "12:00") for d in WEEKDAYS[:5])
        + tuple(WorkingPeriod(d, "13:00", "17:00") for d in WEEKDAYS[:5]),
        holidays=(date(2026, 12, 25),),
    ))
    # Thursday 24 Dec 16:00 + 3 h: one hour on Thursday; Friday is a holiday, then the weekend; Monday 11:00.
    due = add_business_time(local("Europe/Berlin", 2026, 12, 24, 16, 0), timedelta(hours=3), cal)
    assert due == local("Europe/Berlin", 2026, 12, 28, 11, 0)


def test_twenty_four_seven_is_plain_addition() -> None:
    start = utc(2026, 3, 29, 0, 30)
    assert add_business_time(start, timedelta(minutes=90), None) == start + timedelta(minutes=90)
    assert business_time_between(start, start + timedelta(hours=5), None) == timedelta(hours=5)


@pytest.mark.parametrize(("calendar", "field"), [
    (every_day("09:00", "17:00", zone="Mars/Olympus_Mons"), "timezone"),
    (every_day("17:00", "09:00"), "periods[0].end"),
])
def test_a_wrong_calendar_is_a_validation_error_naming_the_field(calendar: BusinessCalendar, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        compile_calendar(calendar)
    assert caught.value.field == field


# --- properties ----------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_adding_business_time_matches_the_minute_by_minute_reference(data: st.DataObject) -> None:
    calendar, base = data.draw(calendars())
    start = data.draw(instants_near(base))
    minutes = data.draw(st.integers(0, min(2 * weekly_minutes(calendar), 3000)))
    assert add_business_time(start, timedelta(minutes=minutes), compile_calendar(calendar)) == \
        reference_add(calendar, start, minutes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_business_time_between_matches_the_minute_by_minute_reference(data: st.DataObject) -> None:
    calendar, base = data.draw(calendars())
    a = data.draw(instants_near(base))
    b = a + timedelta(minutes=data.draw(st.integers(-60, 4 * 1440)))
    assert business_time_between(a, b, compile_calendar(calendar)) == reference_between(calendar, a, b)
