"""User rules: who sees whose contact details, blocking, and the tenant's last admin."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.errors import CannotBlockSelf, LastAdmin
from schemas.events import Event, UserBlocked, UserUnblocked


def sees_all_contacts(viewer_role: str) -> bool:
    """Whether a caller of `viewer_role` may see (and search by fragments of) every user's email and phone."""
    return viewer_role in ("admin", "platform")


def sees_contacts(viewer_role: str, viewer_id: str, user_id: str) -> bool:
    """Whether the viewer may see the email and phone of `user_id`: tenant admins, and everyone for themselves."""
    return sees_all_contacts(viewer_role) or viewer_id == user_id


def decide_block(user_id: str, target: str, *, blocked: bool) -> list[Event]:
    """Events for `user_id` blocking `target`: none when already blocked; blocking oneself is a 400."""
    if target == user_id:
        raise CannotBlockSelf("you cannot block yourself", field="user_id")
    return [] if blocked else [UserBlocked(user_id=target)]


def decide_unblock(target: str, *, blocked: bool) -> list[Event]:
    """Events for lifting a block of `target`: none when there is no block."""
    return [UserUnblocked(user_id=target)] if blocked else []


def check_role_change(admins: Sequence[str], user_id: str, new_role: str | None) -> None:
    """Refuse demoting the tenant's last admin (409 LAST_ADMIN); `admins` are the tenant's admins now."""
    if new_role is not None and new_role != "admin" and list(admins) == [user_id]:
        raise LastAdmin("the tenant's last admin cannot be demoted; promote another admin first", field="role")
