"""Type aliases shared by the packages that talk to PostgreSQL."""

from __future__ import annotations

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
