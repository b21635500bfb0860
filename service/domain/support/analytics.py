"""The analytics period: local dates in an IANA timezone turned into the instants they cover, within bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from schemas.errors import ValidationError

GROUPS = ("hour", "day", "week")
MAX_DAYS = 366
# Hourly series are kept to a month: 744 points, not 8,784.
MAX_HOURLY_DAYS = 31
_ZONES = frozenset(available_timezones())
# Dates a report may name: the day after LATEST and the zone's offset still fit a datetime.
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or a 400 naming `timezone`."""
    if name not in _ZONES:
        raise ValidationError("timezone must be an IANA timezone such as Europe/Berlin", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone must be an IANA timezone such as Europe/Berlin", field="timezone") from None


def parse_date(raw: str | None, *, field: str, default: date) -> date:
    """An ISO date (YYYY-MM-DD), `default` when absent; else a 400 naming `field`."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a date (YYYY-MM-DD)", field=field) from None
    if not EARLIEST <= value <= LATEST:
        raise ValidationError(f"{field} must be a date from {EARLIEST} to {LATEST}", field=field)
    return value


def period(start: date, end: date, tz: ZoneInfo, group_by: str) -> tuple[datetime, datetime]:
    """The instants [from, to) of local days `start` through `end` in `tz`; a 400 when the range is wrong."""
    if end < start:
        raise ValidationError("end_date must not be before start_date", field="end_date")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValidationError(f"the period may span at most {MAX_DAYS} days", field="end_date")
    if group_by == "hour" and days > MAX_HOURLY_DAYS:
        raise ValidationError(f"group_by=hour covers at most {MAX_HOURLY_DAYS} days", field="group_by")
    return _midnight(start, tz), _midnight(end + timedelta(days=1), tz)


def on_whole_hours(start: date, end: date, tz: ZoneInfo, group_by: str) -> bool:
    """Whether every bucket bound of the local dates `start` through `end` in `tz` is a whole UTC hour.

    Then the hourly rollup sums to exactly what the facts give. Days and weeks are bounded by local midnights;
    hours by every local hour, which are whole UTC hours while the zone's offset is (checked hour by hour:
    India's +05:30 or Nepal's +05:45 never are, and nor were most zones before standard time).
    """
    since, until = _midnight(start, tz), _midnight(end + timedelta(days=1), tz)
    if group_by != "hour":
        days = (end - start).days + 2
        return all(_whole_hour(_midnight(start + timedelta(days=n), tz)) for n in range(days))
    at = since.astimezone(UTC)
    while at < until:
        if not _whole_hour(at.astimezone(tz)):
            return False
        at += timedelta(hours=1)
    return _whole_hour(until)


def _whole_hour(at: datetime) -> bool:
    offset = at.utcoffset()
    return offset is not None and offset.total_seconds() % 3600 == 0


def today(now: datetime, tz: ZoneInfo) -> date:
    """The local date of `now` in `tz`."""
    return now.astimezone(tz).date()


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # A zone whose clocks skip midnight (a DST change at 00:00) starts the day at the first instant after it.
    return datetime.combine(day, time(0), tzinfo=tz)
