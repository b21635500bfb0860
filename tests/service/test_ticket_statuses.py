"""service/domain/support/tickets.py: every allowed and every refused ticket transition, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.errors import InvalidTransition, TicketClosed
from service.domain.support.tickets import (
    STATUSES,
    after_requester_comment,
    allowed_statuses,
    auto_close_due,
    display_number,
    next_status,
)

# The Zendesk rules, written out: from each status, where an explicit status change may lead (with an assignee).
ALLOWED = {
    "new": {"open", "pending", "on_hold", "solved"},
    "open": {"pending", "on_hold", "solved"},
    "pending": {"open", "on_hold", "solved"},
    "on_hold": {"open", "pending", "solved"},
    "solved": {"open", "closed"},
    "closed": set(),
}
PAIRS = [(a, b) for a in STATUSES for b in STATUSES]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_status_change_with_an_assignee_is_allowed_exactly_as_the_table_says(source: str, target: str) -> None:
    if source == "closed":
        with pytest.raises(TicketClosed):
            next_status(source, target, assignee="sam", assigning=False)
    elif target == source or target in ALLOWED[source]:
        assert next_status(source, target, assignee="sam", assigning=False) == target
    else:
        with pytest.raises(InvalidTransition) as refused:
            next_status(source, target, assignee="sam", assigning=False)
        assert refused.value.extra["allowed"] == [s for s in STATUSES if s in ALLOWED[source]]
        assert refused.value.status == 409


@pytest.mark.parametrize("source", [s for s in STATUSES if s not in ("closed", "solved")])
def test_solved_needs_an_assignee_and_the_refusal_lists_what_is_allowed_without_one(source: str) -> None:
    with pytest.raises(InvalidTransition) as refused:
        next_status(source, "solved", assignee=None, assigning=False)
    assert refused.value.extra["allowed"] == [s for s in STATUSES if s in ALLOWED[source] - {"solved"}]
    assert "solved" not in allowed_statuses(source, assigned=False)


def test_a_solved_ticket_cannot_lose_its_assignee() -> None:
    with pytest.raises(InvalidTransition):
        next_status("solved", None, assignee=None, assigning=False)


def test_assigning_a_new_ticket_opens_it_and_it_never_returns_to_new() -> None:
    assert next_status("new", None, assignee="sam", assigning=True) == "open"
    assert next_status("new", "pending", assignee="sam", assigning=True) == "pending"  # an explicit status wins
    with pytest.raises(InvalidTransition):
        next_status("new", "new", assignee="sam", assigning=True)
    assert next_status("new", None, assignee=None, assigning=False) == "new"  # other changes keep it new
    for source in STATUSES[1:-1]:
        assert "new" not in allowed_statuses(source, assigned=True)


@pytest.mark.parametrize("source", STATUSES)
def test_a_requester_comment_reopens_pending_on_hold_and_solved_and_closed_is_final(source: str) -> None:
    if source == "closed":
        with pytest.raises(TicketClosed):
            after_requester_comment(source)
        return
    expected = "open" if source in ("pending", "on_hold", "solved") else source
    assert after_requester_comment(source) == expected


def test_auto_close_is_due_after_the_days_only_for_solved_tickets() -> None:
    solved = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert not auto_close_due("solved", solved, solved + timedelta(days=4) - timedelta(seconds=1), days=4)
    assert auto_close_due("solved", solved, solved + timedelta(days=4), days=4)
    assert not auto_close_due("open", solved, solved + timedelta(days=30), days=4)
    assert not auto_close_due("closed", solved, solved + timedelta(days=30), days=4)


def test_numbers_read_like_the_seed() -> None:
    assert display_number(42, datetime(2026, 1, 24, tzinfo=UTC)) == "TKT-2026-0042"
    assert display_number(12345, datetime(2027, 1, 1, tzinfo=UTC)) == "TKT-2027-12345"
