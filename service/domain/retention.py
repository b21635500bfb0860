"""Retention rules: when a room's messages expire, and the event that redacts an expired one."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.events import MessageDeleted

# The actor of redactions the retention job appends (no user asked for them).
RETENTION_ACTOR = "roomlog:retention"


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Messages created before this instant are past a retention of `days` at `now`."""
    return now - timedelta(days=days)


def is_expired(created_at: datetime, *, now: datetime, days: int | None) -> bool:
    """Whether a message created at `created_at` is past its room's retention (None: kept forever) at `now`."""
    return days is not None and created_at < retention_cutoff(now, days)


def decide_expiry(message_id: str) -> MessageDeleted:
    """The redaction of an expired message: a deletion the log records as the retention's."""
    return MessageDeleted(message_id=message_id, deleted_by=RETENTION_ACTOR, reason="retention")
