"""service/domain/presence.py: automatic status from activity, a chosen status over it, invisible, lapses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.presence import Liveness
from service.domain.presence import AWAY_AFTER_SECONDS, ONLINE_SECONDS, Explicit, automatic_status, is_active, shown

NOW = 1_800_000_000.0


def chosen(status: str, *, text: str | None = "lunch", expires_at: float | None = None,
           set_at: float = NOW - 30) -> Explicit:
    return Explicit(status=status, status_text=text, status_emoji=":fork:", expires_at=expires_at,  # type: ignore[arg-type]
                    set_at=set_at)


def test_activity_within_two_minutes_is_online_and_older_is_offline() -> None:
    assert automatic_status(Liveness(last_active=NOW - ONLINE_SECONDS + 1), NOW) == "online"
    assert automatic_status(Liveness(last_active=NOW - ONLINE_SECONDS), NOW) == "offline"
    assert automatic_status(Liveness(), NOW) == "offline"


def test_an_open_socket_is_online_until_idle_for_ten_minutes_then_away() -> None:
    socket = NOW + 30
    assert automatic_status(Liveness(last_active=NOW - AWAY_AFTER_SECONDS + 1, socket_until=socket), NOW) == "online"
    assert automatic_status(Liveness(last_active=NOW - AWAY_AFTER_SECONDS, socket_until=socket), NOW) == "away"
    # A lease that ran out (its instance died) is no open socket.
    assert automatic_status(Liveness(last_active=NOW - 900, socket_until=NOW - 1), NOW) == "offline"


def test_a_chosen_dnd_wins_over_activity_with_its_text_until_it_lapses() -> None:
    live = Liveness(last_active=NOW - 5)
    dnd = chosen("dnd", expires_at=NOW + 60)
    seen = shown("al", live, dnd, NOW)
    assert (seen.status, seen.status_text, seen.status_emoji) == ("dnd", "lunch", ":fork:")
    lapsed = shown("al", live, dnd, NOW + 60)
    assert (lapsed.status, lapsed.status_text, lapsed.status_emoji) == ("online", None, None)


def test_invisible_is_offline_to_others_last_seen_when_it_began() -> None:
    seen = shown("al", Liveness(last_active=NOW - 5, socket_until=NOW + 30), chosen("offline", set_at=NOW - 20), NOW)
    assert seen.status == "offline"
    assert seen.last_seen is not None and seen.last_seen.timestamp() == NOW - 20
    assert not is_active(Liveness(last_active=NOW - 5), chosen("offline"), NOW)


def test_choosing_online_keeps_the_automatic_status_and_shows_the_text() -> None:
    seen = shown("al", Liveness(last_active=NOW - 500), chosen("online", text="in Paris"), NOW)
    assert (seen.status, seen.status_text) == ("offline", "in Paris")


@settings(max_examples=60, deadline=None)
@given(active=st.none() | st.floats(0, 2000), socket=st.none() | st.floats(-100, 100),
       status=st.none() | st.sampled_from(["online", "away", "dnd", "offline"]), lapse=st.none() | st.integers(-50, 50))
def test_the_shown_status_is_the_chosen_one_while_in_force_else_the_automatic_one(
    active: float | None, socket: float | None, status: str | None, lapse: int | None
) -> None:
    live = Liveness(last_active=None if active is None else NOW - active,
                    socket_until=None if socket is None else NOW + socket)
    explicit = None if status is None else chosen(status, expires_at=None if lapse is None else NOW + lapse)
    seen = shown("al", live, explicit, NOW)
    in_force = explicit is not None and (lapse is None or lapse > 0)
    if in_force and status != "online":
        assert seen.status == status
    else:
        assert seen.status == automatic_status(live, NOW)
        assert (seen.status_text is None) == (not in_force)
    if seen.last_seen is not None:
        assert seen.last_seen.timestamp() <= NOW
