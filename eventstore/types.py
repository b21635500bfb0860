"""Type aliases shared by the packages that talk to PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A connection of our own or one borrowed from a pool: both run the same queries.
    Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
    Queryable: TypeAlias = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool
else:
    Connection = asyncpg.Connection
    Queryable = asyncpg.Connection


@dataclass(frozen=True, slots=True)
class Chained:
    """A projection statement that reads the RETURNING rows of statements before it, by their names.

    The steps and `final` run as one statement, in the append and in replay alike. In an append the
    steps, like every projection statement there, see the tables as they were before it, except that an
    `INSERT … ON CONFLICT DO UPDATE` step updates the newest committed row: a counter kept that way is
    read and bumped under the row's lock, never from the statement's older snapshot.
    """

    steps: tuple[tuple[str, str], ...]  # (name, data-modifying statement with RETURNING)
    final: str

    def ctes(self) -> str:
        """The steps as CTEs, each preceded by a comma."""
        return "".join(f",\n  {name} AS ({sql})" for name, sql in self.steps)


# What a SQL projection runs over the relation `new_events`: one statement, or a chain of them.
ProjectionStatement: TypeAlias = "str | Chained"
