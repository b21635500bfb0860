"""Support session statuses: the one transition function every session command goes through."""

from __future__ import annotations

from typing import Literal

from schemas.errors import InvalidTransition, SessionClosed

SessionStatus = Literal["queued", "active", "on_hold", "transferred", "resolved", "closed"]
SessionAction = Literal["assign", "hold", "resume", "transfer", "escalate", "end", "message", "rate"]

ENDED: frozenset[str] = frozenset({"resolved", "closed"})

# For each action, the statuses it may start from and where it leads ("same" keeps the status).
_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "assign": (frozenset({"queued", "transferred"}), "active"),
    "hold": (frozenset({"active"}), "on_hold"),
    "resume": (frozenset({"on_hold"}), "active"),
    "transfer": (frozenset({"queued", "active", "on_hold"}), "transferred"),
    "escalate": (frozenset({"queued", "active", "on_hold", "transferred"}), "transferred"),
    "end": (frozenset({"queued", "active", "on_hold", "transferred"}), "resolved"),
    "message": (frozenset({"queued", "active", "on_hold", "transferred"}), "same"),
    "rate": (ENDED, "same"),
}


def allowed_actions(status: str) -> list[str]:
    """The actions a client may take on a session in `status` (assignment is the router's), in a stable order."""
    return sorted(a for a, (sources, _) in _TRANSITIONS.items() if status in sources and a != "assign")


def transition(status: str, action: SessionAction, *, resolution: str = "resolved") -> SessionStatus:
    """The status after `action`; SESSION_CLOSED for writes to an ended session, else INVALID_TRANSITION."""
    sources, target = _TRANSITIONS[action]
    if status not in sources:
        if status in ENDED and action != "rate":
            raise SessionClosed("the session has ended", field="session_id")
        allowed = allowed_actions(status)
        raise InvalidTransition(f"a {status} session cannot {action}; it can: {', '.join(allowed) or 'nothing'}",
                                allowed=allowed)
    if action == "end":
        return "resolved" if resolution == "resolved" else "closed"
    return status if target == "same" else target  # type: ignore[return-value]
