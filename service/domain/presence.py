"""Presence rules: the automatic status from activity, an explicit status over it, and what others are shown.

Automatic: a user is `online` while an open WebSocket or any authenticated call was seen within
`ONLINE_SECONDS` (2 minutes); `away` while a WebSocket stays open but nothing was sent for `AWAY_AFTER_SECONDS`
(10 minutes); `offline` otherwise. An explicit `away`, `dnd` or `offline` (invisible) wins until it is set back
to `online` or its `clear_after_minutes` runs out, which also clears the text and emoji. All times are seconds
since the epoch from a clock the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.events import PresenceStatus
from schemas.presence import Liveness, UserPresence

ONLINE_SECONDS = 120.0
AWAY_AFTER_SECONDS = 600.0


@dataclass(frozen=True)
class Explicit:
    """A status the user chose, as the read model holds it."""

    status: PresenceStatus
    status_text: str | None
    status_emoji: str | None
    expires_at: float | None
    set_at: float


def current_explicit(explicit: Explicit | None, now: float) -> Explicit | None:
    """The explicit status still in force at `now` (None once expired)."""
    if explicit is None or (explicit.expires_at is not None and explicit.expires_at <= now):
        return None
    return explicit


def automatic_status(live: Liveness, now: float) -> PresenceStatus:
    """The status activity alone gives."""
    socket_open = live.socket_until is not None and live.socket_until > now
    active = live.last_active is not None and now - live.last_active < ONLINE_SECONDS
    if socket_open:
        idle = live.last_active is None or now - live.last_active >= AWAY_AFTER_SECONDS
        return "away" if idle else "online"
    return "online" if active else "offline"


def last_seen(live: Liveness, now: float) -> float | None:
    """The latest moment the user was seen: an open socket counts as now."""
    if live.socket_until is not None and live.socket_until > now:
        return now
    seen = [t for t in (live.last_active, live.socket_closed, live.socket_until) if t is not None]
    return min(max(seen), now) if seen else None


def shown(user_id: str, live: Liveness, explicit: Explicit | None, now: float) -> UserPresence:
    """The presence of `user_id` as everyone sees it at `now` (invisible is offline, seen when it began)."""
    chosen = current_explicit(explicit, now)
    seen = last_seen(live, now)
    status = automatic_status(live, now)
    if chosen is None:
        return UserPresence(user_id=user_id, status=status, last_seen=_time(seen), status_text=None,
                            status_emoji=None)
    if chosen.status == "offline" and seen is not None:
        seen = min(seen, chosen.set_at)
    if chosen.status != "online":
        status = chosen.status
    return UserPresence(user_id=user_id, status=status, last_seen=_time(seen), status_text=chosen.status_text,
                        status_emoji=chosen.status_emoji)


def is_active(live: Liveness, explicit: Explicit | None, now: float) -> bool:
    """Whether the user counts in `GET /presence/online`: active within 2 minutes and not invisible."""
    chosen = current_explicit(explicit, now)
    if chosen is not None and chosen.status == "offline":
        return False
    seen = last_seen(live, now)
    return seen is not None and now - seen < ONLINE_SECONDS


def expiry(now: float, clear_after_minutes: int | None) -> float | None:
    """When a status set at `now` with `clear_after_minutes` lapses."""
    return None if clear_after_minutes is None else now + clear_after_minutes * 60.0


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
