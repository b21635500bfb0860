"""service/realtime/presence.py: how long a user has been gone, on a fake clock (what support routing's grace uses)."""

from __future__ import annotations

from service.realtime.presence import PresenceTracker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_offline_for_is_unknown_before_a_user_was_seen_zero_while_online_then_the_time_since_they_left() -> None:
    clock = FakeClock()
    presence = PresenceTracker(clock=clock)
    assert presence.offline_for("t", "ag") is None
    await presence.connected("t", "ag")
    await presence.connected("t", "ag")
    clock.now += 50
    await presence.disconnected("t", "ag")
    assert presence.offline_for("t", "ag") == 0.0  # one connection is still open
    await presence.disconnected("t", "ag")
    clock.now += 12.5
    assert presence.offline_for("t", "ag") == 12.5
    assert presence.offline_for("other-tenant", "ag") is None
