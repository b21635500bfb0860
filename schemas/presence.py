"""Presence: the body of `PUT /presence`, what `GET /presence` answers, and how it travels between instances."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.api import _Request
from schemas.events import PresenceStatus

StatusText = Annotated[str, msgspec.Meta(max_length=100, pattern=r"^[^\x00-\x1f]*$")]
StatusEmoji = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\s]+$")]
# At most a week: a status meant for longer is set without an expiry.
ClearAfter = Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 60)]


class SetPresence(_Request):
    """`status` "online" returns to the automatic status; "offline" is invisible (shown offline to others)."""

    status: PresenceStatus
    status_text: StatusText | None = None
    status_emoji: StatusEmoji | None = None
    clear_after_minutes: ClearAfter | None = None


class UserPresence(msgspec.Struct):
    """A user's presence as others see it (an invisible user is offline, last seen when they went invisible)."""

    user_id: str
    status: PresenceStatus
    last_seen: datetime | None
    status_text: str | None
    status_emoji: str | None


class PresenceUpdated(msgspec.Struct):
    """A user who shares a room with you changed status, text or emoji."""

    user_id: str
    status: PresenceStatus
    last_seen: datetime | None
    status_text: str | None
    status_emoji: str | None
    type: Literal["presence.updated"] = "presence.updated"


class Liveness(msgspec.Struct, array_like=True):
    """What the cluster knows of a user's activity (seconds since the epoch), as stored in the presence bucket."""

    last_active: float | None = None  # the last authenticated call or client frame
    socket_until: float | None = None  # a WebSocket is open until at least then (renewed while it stays open)
    socket_closed: float | None = None  # when the last WebSocket closed
