"""The inline projections: run inside every append transaction, so reads right after a write see it."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from eventstore.append import GuardColumns
from eventstore.types import Connection, ProjectionStatement
from projections.base import Projection
from projections.blocks import BlocksProjection
from projections.bots import BotsProjection
from projections.dead_letters import DeadLettersProjection
from projections.guards import batch_key, encode_guard, guard_error
from projections.kb import KbArticlesProjection
from projections.media import MediaProjection
from projections.media_limits import MediaLimitsProjection
from projections.members import MembersProjection
from projections.mentions import MentionsProjection
from projections.message_attachments import MessageAttachmentsProjection
from projections.messages import MessagesProjection
from projections.presence import PresenceStatusesProjection
from projections.receipts import ReceiptsProjection
from projections.rooms import RoomsProjection
from projections.sla_clocks import SlaClocksProjection
from projections.subscriptions import SubscriptionsProjection
from projections.support_agents import SupportAgentsProjection
from projections.support_credit import SupportCreditProjection
from projections.support_sessions import SupportSessionsProjection
from projections.support_sla import SupportSlaProjection
from projections.support_tickets import SupportTicketsProjection
from projections.user_rooms import UserRoomsProjection
from schemas.errors import RoomlogError
from schemas.events import RecordedEvent

INLINE_PROJECTIONS: tuple[Projection, ...] = (
    RoomsProjection(),
    MembersProjection(),
    MessagesProjection(),
    MentionsProjection(),
    MessageAttachmentsProjection(),
    ReceiptsProjection(),
    UserRoomsProjection(),
    BlocksProjection(),
    PresenceStatusesProjection(),
    SubscriptionsProjection(),
    DeadLettersProjection(),
    SupportAgentsProjection(),
    SupportSessionsProjection(),
    SupportTicketsProjection(),
    SupportSlaProjection(),
    SlaClocksProjection(),
    MediaProjection(),
    KbArticlesProjection(),
    SupportCreditProjection(),
    BotsProjection(),
    MediaLimitsProjection(),
)


async def apply_all(
    conn: Connection, projections: Sequence[Projection], events: Sequence[RecordedEvent]
) -> None:
    """Hand each projection the events it handles, in log order."""
    for projection in projections:
        mine = [e for e in events if e.type in projection.handles]
        if mine:
            await projection.apply(conn, mine)


class InlineProjections:
    """The eventstore's hook: guards before the write, every inline projection with it.

    Projections with SQL run inside the append statement; the rest are applied here, in its transaction.
    """

    def __init__(self, projections: Sequence[Projection] = INLINE_PROJECTIONS) -> None:
        self.projection_sql: tuple[ProjectionStatement, ...] = tuple(sql for p in projections for sql in p.sql or ())
        self._in_python = tuple(p for p in projections if p.sql is None)
        self._python_types = frozenset(t for p in self._in_python for t in p.handles)

    def needs_transaction(self, types: set[str]) -> bool:
        return not self._python_types.isdisjoint(types)

    def encode_guard(self, guard: object) -> GuardColumns:
        return encode_guard(guard)

    def guard_error(self, guard: object, code: str, detail: str | None) -> RoomlogError:
        return guard_error(guard, code, detail)

    def batch_key(self, guard: object) -> tuple[Hashable, bool] | None:
        return batch_key(guard)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await apply_all(conn, self._in_python, events)
