"""Ticket statuses: the Zendesk rules as pure functions every ticket command goes through.

A ticket never returns to `new`; assigning a `new` ticket opens it; a requester's comment reopens a
`pending`, `on_hold` or `solved` ticket; `solved` needs an assignee; `closed` is final (a follow-up ticket
instead); a solved ticket closes by itself after the tenant's number of days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from schemas.errors import InvalidTransition, TicketClosed

TicketStatus = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
STATUSES: tuple[TicketStatus, ...] = ("new", "open", "pending", "on_hold", "solved", "closed")
REOPENED_BY_REQUESTER: frozenset[str] = frozenset({"pending", "on_hold", "solved"})
DEFAULT_AUTO_CLOSE_DAYS = 4
MAX_AUTO_CLOSE_DAYS = 28

# Where a status may be set to by hand (besides staying where it is). Closing by hand needs `solved` first.
_NEXT: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "on_hold", "solved"}),
    "open": frozenset({"pending", "on_hold", "solved"}),
    "pending": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending", "solved"}),
    "solved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}


def allowed_statuses(status: str, *, assigned: bool) -> list[str]:
    """The statuses a ticket in `status` may be set to, with or without an assignee, in the machine's order."""
    targets = _NEXT[status] - (set() if assigned else {"solved"})
    return [s for s in STATUSES if s in targets]


def next_status(status: str, requested: str | None, *, assignee: str | None, assigning: bool) -> str:
    """The status after an update asking for `requested` (None: unchanged) with `assignee` as the assignee after it.

    `assigning` says whether the update gives the ticket a new assignee. Raises TICKET_CLOSED for any change of
    a closed ticket and INVALID_TRANSITION (with `allowed`) for a refused status.
    """
    if status == "closed":
        raise TicketClosed("a closed ticket is final: open a follow-up ticket instead", field="status")
    assigned = assignee is not None
    target = status if requested is None else requested
    if requested is None and status == "new" and assigning and assigned:
        target = "open"
    if target == "solved" and not assigned:
        raise _refused(status, target, assigned, "a solved ticket needs an assignee")
    if target != status and target not in _NEXT[status]:
        raise _refused(status, target, assigned, f"a {status} ticket cannot become {target}")
    if target == "new" and assigning and assigned:
        raise _refused(status, target, assigned, "assigning a new ticket opens it")
    return target


def _refused(status: str, target: str, assigned: bool, why: str) -> InvalidTransition:
    allowed = allowed_statuses(status, assigned=assigned)
    return InvalidTransition(f"{why}; it can become: {', '.join(allowed) or 'nothing'}", field="status",
                             allowed=allowed)


def after_requester_comment(status: str) -> str:
    """The status after the ticket's customer commented: pending, on_hold and solved reopen; closed is final."""
    if status == "closed":
        raise TicketClosed("a closed ticket is final: open a follow-up ticket instead", field="ticket_id")
    return "open" if status in REOPENED_BY_REQUESTER else status


def auto_close_due(status: str, solved_at: datetime | None, now: datetime, *, days: int) -> bool:
    """Whether a ticket is due to close by itself at `now`: solved for at least `days` days."""
    return status == "solved" and solved_at is not None and now >= solved_at + timedelta(days=days)


def display_number(number: int, created_at: datetime) -> str:
    """The ticket's number as people read it: TKT-<year>-<number, at least 4 digits>."""
    return f"TKT-{created_at.year}-{number:04d}"
