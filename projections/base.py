"""What a projection is: a named, versioned read model that owns its tables and folds events into them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import asyncpg

from eventstore.append import record_from_row
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


@runtime_checkable
class StatementProjection(Protocol):
    """A projection whose `apply` is nothing but `statements` over `new_events`: replay feeds it a whole batch."""

    @property
    def handles(self) -> frozenset[str]: ...
    @property
    def statements(self) -> Sequence[ProjectionStatement]: ...


@runtime_checkable
class BatchProjection(Protocol):
    """A projection that folds a replay batch itself, reading from its position range what it need not decode.

    `decodes` names the types whose events it takes from `LogBatch.events`.
    """

    @property
    def decodes(self) -> frozenset[str]: ...

    async def apply_batch(self, conn: Connection, batch: LogBatch) -> None: ...


def decoded_types(projections: Sequence[Projection]) -> frozenset[str]:
    """The types whose events folding a batch into `projections` decodes: all their handles but those only SQL reads."""
    types: set[str] = set()
    for projection in projections:
        if isinstance(projection, StatementProjection):
            types.update(t for t in projection.handles if needs_upcasting(t))
        elif isinstance(projection, BatchProjection):
            types.update(projection.decodes)
        else:
            types.update(projection.handles)
    return frozenset(types)


class LogBatch:
    """One contiguous batch of the global log as read (rows undecoded), for replay.

    Every row in (after, until] is in `rows`: the reader hands on no batch with a hole a late commit could
    still fill. Rows are decoded only for the projections that fold them in Python, each row once; a reader may
    leave out (NULL) the payloads of the types none of them decodes (`decoded_types`).
    """

    def __init__(self, rows: Sequence[asyncpg.Record], *, after: int, until: int) -> None:
        self.rows = rows
        self.after = after
        self.until = until
        self._by_type: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            self._by_type.setdefault(row["type"], []).append(i)
        self._decoded: dict[int, RecordedEvent] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def types(self) -> dict[str, int]:
        """How many events of each type the batch holds."""
        return {t: len(i) for t, i in self._by_type.items()}

    def events(self, handles: frozenset[str]) -> list[RecordedEvent]:
        """The batch's events of the given types, decoded, in log order."""
        found = [self._by_type[t] for t in handles if t in self._by_type]
        indexes = found[0] if len(found) == 1 else sorted(i for group in found for i in group)
        decoded = self._decoded
        out = []
        for i in indexes:
            rec = decoded.get(i)
            if rec is None:
                row = self.rows[i]
                if row["data"] is None:
                    raise RuntimeError(f"the batch was read without the payloads of {row['type']} events")
                rec = decoded[i] = record_from_row(row)
            out.append(rec)
        return out


_RANGE_EVENTS = "SELECT * FROM events WHERE position > $1 AND position <= $2 AND type = ANY($3::text[])"
_RANGE_UPCAST_EVENTS = """
SELECT e.position, e.stream_id, e.seq, e.tenant_id, e.type, coalesce(u.data, e.data) AS data, e.metadata,
       e.idempotency_key, e.created_at, e.tx_id
FROM events e LEFT JOIN unnest($4::bigint[], $5::jsonb[]) AS u(position, data) ON u.position = e.position
WHERE e.position > $1 AND e.position <= $2 AND e.type = ANY($3::text[])
"""


async def apply_statements_to_batch(conn: Connection, projection: StatementProjection, batch: LogBatch) -> None:
    """Run a statement projection over a batch as a position range of `events` (an index range scan per statement
    instead of one probe per event), with old payloads of the batch upcast."""
    handled = [t for t in projection.handles if t in batch.types]
    if not handled:
        return
    stale_types = frozenset(t for t in handled if needs_upcasting(t))
    stale = batch.events(stale_types) if stale_types else []
    for step in projection.statements:
        statement = _statement_text(step)
        if stale:
            await conn.execute(f"WITH new_events AS ({_RANGE_UPCAST_EVENTS}){statement}", batch.after, batch.until,
                               handled, [e.position for e in stale], [encode_event(e.event) for e in stale])
        else:
            await conn.execute(f"WITH new_events AS ({_RANGE_EVENTS}){statement}", batch.after, batch.until,
                               handled)


async def apply_to_batch(conn: Connection, projection: Projection, batch: LogBatch) -> None:
    """Fold a batch of the log into one projection: statement projections over its position range, batch
    projections as they choose, the rest over its events of their types, decoded."""
    if isinstance(projection, StatementProjection):
        await apply_statements_to_batch(conn, projection, batch)
    elif isinstance(projection, BatchProjection):
        await projection.apply_batch(conn, batch)
    elif mine := batch.events(projection.handles):
        await projection.apply(conn, mine)


def _statement_text(step: ProjectionStatement) -> str:
    """What follows `WITH new_events AS (…)`: a chain's steps as more CTEs then its final statement, or the one."""
    return f"{step.ctes()} {step.final}" if isinstance(step, Chained) else f" {step}"


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
        statement = _statement_text(step)
        if stale:
            await conn.execute(f"WITH new_events AS ({_UPCAST_EVENTS}){statement}", positions,
                               [e.position for e in stale], [encode_event(e.event) for e in stale])
        else:
            await conn.execute(
                f"WITH new_events AS (SELECT * FROM events WHERE position = ANY($1::bigint[])){statement}", positions
            )
