"""Business-hours arithmetic: working time as UTC intervals of an IANA timezone's wall clock.

An instant is working time when its local wall-clock time falls in one of its local weekday's periods and
its local date is not a holiday. So across a spring-forward change the skipped hour simply does not exist
(a 01:00-05:00 period then holds three hours), and across a fall-back change the repeated hour counts
twice (five hours) — both are what a clock on the office wall shows.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.errors import ValidationError
from schemas.sla import WEEKDAYS, BusinessCalendar

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_SECOND = timedelta(seconds=1)
# A calendar always has working time within this many days (holidays are a finite list of dates, and
# at most 1000 of them, so this bounds a search rather than being a rule).
_MAX_SEARCH_DAYS = 5000


@dataclass(frozen=True)
class Calendar:
    """A validated calendar: the zone, per weekday (Monday first) its merged periods in minutes, holidays."""

    zone: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _merged(periods: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(periods):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def compile_calendar(calendar: BusinessCalendar) -> Calendar:
    """The calendar checked and ready for arithmetic; VALIDATION_ERROR names what is wrong."""
    try:
        zone = ZoneInfo(calendar.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone {calendar.timezone!r}", field="timezone") from None
    days: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for index, period in enumerate(calendar.periods):
        start, end = _minutes(period.start), _minutes(period.end)
        if end <= start:
            raise ValidationError("a period must end after it starts", field=f"periods[{index}].end")
        days[WEEKDAYS.index(period.day)].append((start, end))
    return Calendar(zone=zone, week=tuple(_merged(d) for d in days), holidays=frozenset(calendar.holidays))


def _offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """[start, end) cut where the zone's UTC offset changes: (from, to, offset) pieces."""
    points = [start]
    probe = start
    while probe < end:
        probe = min(probe + _HOUR, end)
        points.append(probe)
    pieces: list[tuple[datetime, datetime, timedelta]] = []
    for a, b in pairwise(points):
        off_a, off_b = _offset(zone, a), _offset(zone, b - _SECOND)
        if off_a == off_b:
            pieces.append((a, b, off_a))
            continue
        # One change inside the hour (zones never change twice within one): find it to the second.
        low, high = a, b - _SECOND
        while high - low > _SECOND:
            mid = low + (high - low) / 2
            mid = mid.replace(microsecond=0)
            if _offset(zone, mid) == off_a:
                low = mid
            else:
                high = mid
        pieces += [(a, high, off_a), (high, b, off_b)]
    merged: list[tuple[datetime, datetime, timedelta]] = []
    for piece in pieces:
        if merged and merged[-1][2] == piece[2] and merged[-1][1] == piece[0]:
            merged[-1] = (merged[-1][0], piece[1], piece[2])
        else:
            merged.append(piece)
    return merged


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@lru_cache(maxsize=65536)
def working_intervals(calendar: Calendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC instants whose local time is working time on local date `day`, as sorted disjoint intervals."""
    periods = () if day in calendar.holidays else calendar.week[day.weekday()]
    if not periods:
        return ()
    naive = datetime(day.year, day.month, day.day, tzinfo=UTC)  # local midnight read as if it were UTC
    # Offsets lie within ±26 h, so every instant of this local day lies in this UTC window.
    pieces = _offset_segments(calendar.zone, naive - timedelta(hours=26), naive + timedelta(hours=50))
    found: list[tuple[datetime, datetime]] = []
    for start_min, end_min in periods:
        local_start, local_end = naive + timedelta(minutes=start_min), naive + timedelta(minutes=end_min)
        for a, b, offset in pieces:
            lo, hi = max(a, local_start - offset), min(b, local_end - offset)
            if lo < hi:
                found.append((lo, hi))
    found.sort()
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in found:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _intervals_from(calendar: Calendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals from `start` on, clipped to it, in time order (never ends)."""
    day = start.astimezone(calendar.zone).date() - _DAY
    # A local day's intervals can interleave with the next day's only across a zone change: a heap keeps order.
    pending: list[tuple[datetime, datetime]] = []
    empty_days = 0
    while True:
        intervals = working_intervals(calendar, day)
        empty_days = 0 if intervals else empty_days + 1
        if empty_days > _MAX_SEARCH_DAYS:
            raise ValidationError("the calendar has no working time", field="calendar")
        for interval in intervals:
            if interval[1] > start:
                heapq.heappush(pending, interval)
        # Every later local day's instants lie after this (offsets are within ±26 h).
        horizon = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=26) + _DAY
        while pending and pending[0][1] <= horizon:
            a, b = heapq.heappop(pending)
            yield max(a, start), b
        day += _DAY


def add_business_time(start: datetime, duration: timedelta, calendar: Calendar | None) -> datetime:
    """The instant at which `duration` of working time has passed since `start` (24/7 when no calendar)."""
    if calendar is None or duration <= timedelta(0):
        return start + max(duration, timedelta(0))
    remaining = duration
    for a, b in _intervals_from(calendar, start):
        if b - a >= remaining:
            return a + remaining
        remaining -= b - a
    raise AssertionError("unreachable: the interval stream never ends")


def business_time_between(a: datetime, b: datetime, calendar: Calendar | None) -> timedelta:
    """Working time within [a, b) (zero when b is not after a; all of it when no calendar)."""
    if b <= a:
        return timedelta(0)
    if calendar is None:
        return b - a
    total = timedelta(0)
    for lo, hi in _intervals_from(calendar, a):
        if lo >= b:
            break
        total += min(hi, b) - lo
    return total
