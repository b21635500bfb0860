"""What a projection is: a named, versioned read model that owns its tables and folds events into them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventstore.types import Chained, Connection, ProjectionStatement
from schemas.events import RecordedEvent, encode_event
from schemas.upcasting import needs_upcasting


class Projection(Protocol):
    """A read model built from the log.

    `ddl` creates the tables with unqualified names, so replay can build a shadow copy in another
    schema. `apply` must be idempotent: applying an event twice, or an older event after a newer
    one, changes nothing.

    A projection with `sql` (data-modifying statements over the relation `new_events`, which has the
    columns of `events`) is applied inside the append statement itself, each statement as a CTE of its
    own: they all see the tables as they were before the append. Its `apply` runs the same statements
    one after the other over events read back from the log (replay).
    """

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def tables(self) -> tuple[str, ...]: ...
    @property
    def handles(self) -> frozenset[str]: ...
    @property
    def ddl(self) -> str: ...
    @property
    def sql(self) -> Sequence[ProjectionStatement] | None: ...

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None: ...


_UPCAST_EVENTS = """
SELECT e.position, e.stream_id, e.seq, e.tenant_id, e.type, coalesce(u.data, e.data) AS data, e.metadata,
       e.idempotency_key, e.created_at, e.tx_id
FROM events e LEFT JOIN unnest($2::bigint[], $3::jsonb[]) AS u(position, data) ON u.position = e.position
WHERE e.position = ANY($1::bigint[])
"""


async def apply_statements(
    conn: Connection, statements: Sequence[ProjectionStatement], handles: frozenset[str],
    events: Sequence[RecordedEvent],
) -> None:
    """Run a projection's SQL statements one after another over the events it handles, read back from the log."""
    mine = [e for e in events if e.type in handles]
    if not mine:
        return
    positions = [e.position for e in mine]
    # Stored payloads of a type with newer versions may be old: hand the statements the current shape.
    stale = [e for e in mine if needs_upcasting(e.type)]
    for step in statements:
        statement = f"{step.ctes()} {step.final}" if isinstance(step, Chained) else f" {step}"
        if stale:
            await conn.execute(f"WITH new_events AS ({_UPCAST_EVENTS}){statement}", positions,
                               [e.position for e in stale], [encode_event(e.event) for e in stale])
        else:
            await conn.execute(
                f"WITH new_events AS (SELECT * FROM events WHERE position = ANY($1::bigint[])){statement}", positions
            )
