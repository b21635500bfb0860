"""What a projection is: a named, versioned read model that owns its tables and folds events into them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventstore.types import Connection
from schemas.events import RecordedEvent


class Projection(Protocol):
    """A read model built from the log.

    `ddl` creates the tables with unqualified names, so replay can build a shadow copy in another
    schema. `apply` must be idempotent: applying an event twice, or an older event after a newer
    one, changes nothing.
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

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None: ...
