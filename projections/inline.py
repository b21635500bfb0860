"""The inline projections: run inside every append transaction, so reads right after a write see it."""

from __future__ import annotations

from collections.abc import Sequence

from eventstore.append import AppendRequest
from eventstore.types import Connection
from projections.base import Projection
from projections.blocks import BlocksProjection
from projections.dead_letters import DeadLettersProjection
from projections.guards import check_guards
from projections.members import MembersProjection
from projections.messages import MessagesProjection
from projections.receipts import ReceiptsProjection
from projections.rooms import RoomsProjection
from projections.subscriptions import SubscriptionsProjection
from schemas.errors import RoomlogError
from schemas.events import RecordedEvent

INLINE_PROJECTIONS: tuple[Projection, ...] = (
    RoomsProjection(),
    MembersProjection(),
    MessagesProjection(),
    ReceiptsProjection(),
    BlocksProjection(),
    SubscriptionsProjection(),
    DeadLettersProjection(),
)


def by_name(name: str) -> Projection:
    """The inline projection called `name`; KeyError when there is none."""
    for projection in INLINE_PROJECTIONS:
        if projection.name == name:
            return projection
    raise KeyError(name)


async def apply_all(
    conn: Connection, projections: Sequence[Projection], events: Sequence[RecordedEvent]
) -> None:
    """Hand each projection the events it handles, in log order."""
    for projection in projections:
        mine = [e for e in events if e.type in projection.handles]
        if mine:
            await projection.apply(conn, mine)


class InlineProjections:
    """The eventstore's hook: guards before the write, every inline projection after it."""

    def __init__(self, projections: Sequence[Projection] = INLINE_PROJECTIONS) -> None:
        self._projections = tuple(projections)

    async def check(self, conn: Connection, requests: Sequence[AppendRequest]) -> list[RoomlogError | None]:
        return await check_guards(conn, requests)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await apply_all(conn, self._projections, events)
