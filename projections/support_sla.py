"""SLA configuration read model: each tenant's calendars and policies, current and every version, in rank order."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from schemas.events import (
    RecordedEvent,
    SupportSlaCalendarDeleted,
    SupportSlaCalendarSaved,
    SupportSlaPoliciesOrdered,
    SupportSlaPolicyDeleted,
    SupportSlaPolicySaved,
)

_encoder = msgspec.json.Encoder()

_CALENDAR = """
INSERT INTO support_sla_calendars AS c (tenant_id, calendar_id, version, name, calendar, deleted, updated_by,
                                        updated_at, updated_position)
VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8)
ON CONFLICT (tenant_id, calendar_id) DO UPDATE
SET version = EXCLUDED.version, name = EXCLUDED.name, calendar = EXCLUDED.calendar, deleted = false,
    updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at, updated_position = EXCLUDED.updated_position
WHERE c.updated_position < EXCLUDED.updated_position
"""
_CALENDAR_DELETED = """
UPDATE support_sla_calendars SET version = $3, deleted = true, updated_by = $4, updated_at = $5, updated_position = $6
WHERE tenant_id = $1 AND calendar_id = $2 AND updated_position < $6
"""
_CALENDAR_VERSION = """
INSERT INTO support_sla_calendar_versions (tenant_id, calendar_id, version, name, calendar, saved_by, saved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
"""
_POLICY = """
INSERT INTO support_sla_policies AS p (tenant_id, policy_id, version, name, rank, policy, deleted, updated_by,
                                       updated_at, updated_position, rank_position)
VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $9, $9)
ON CONFLICT (tenant_id, policy_id) DO UPDATE
SET version = EXCLUDED.version, name = EXCLUDED.name, policy = EXCLUDED.policy, deleted = false,
    updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at, updated_position = EXCLUDED.updated_position,
    rank = CASE WHEN p.rank_position < EXCLUDED.rank_position THEN EXCLUDED.rank ELSE p.rank END,
    rank_position = greatest(p.rank_position, EXCLUDED.rank_position)
WHERE p.updated_position < EXCLUDED.updated_position
"""
_POLICY_DELETED = """
UPDATE support_sla_policies SET version = $3, deleted = true, updated_by = $4, updated_at = $5, updated_position = $6
WHERE tenant_id = $1 AND policy_id = $2 AND updated_position < $6
"""
_POLICY_VERSION = """
INSERT INTO support_sla_policy_versions (tenant_id, policy_id, version, name, policy, saved_by, saved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
"""
_ORDERED = """
UPDATE support_sla_policies p SET rank = o.rank - 1, rank_position = $3
FROM unnest($2::text[]) WITH ORDINALITY AS o(policy_id, rank)
WHERE p.tenant_id = $1 AND p.policy_id = o.policy_id AND p.rank_position < $3
"""


class SupportSlaProjection:
    name = "support_sla"
    version = 1
    tables = ("support_sla_calendars", "support_sla_calendar_versions", "support_sla_policies",
              "support_sla_policy_versions")
    handles = frozenset({"support.sla.calendar_saved", "support.sla.calendar_deleted", "support.sla.policy_saved",
                         "support.sla.policy_deleted", "support.sla.policies_ordered"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE support_sla_calendars (
        tenant_id        text NOT NULL,
        calendar_id      text NOT NULL,
        version          int NOT NULL,
        name             text NOT NULL,
        calendar         text NOT NULL,  -- BusinessCalendar as JSON
        deleted          boolean NOT NULL,
        updated_by       text NOT NULL,
        updated_at       timestamptz NOT NULL,
        updated_position bigint NOT NULL,
        PRIMARY KEY (tenant_id, calendar_id)
    );
    CREATE TABLE support_sla_calendar_versions (
        tenant_id   text NOT NULL,
        calendar_id text NOT NULL,
        version     int NOT NULL,
        name        text NOT NULL,
        calendar    text NOT NULL,
        saved_by    text NOT NULL,
        saved_at    timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, calendar_id, version)
    );
    CREATE TABLE support_sla_policies (
        tenant_id        text NOT NULL,
        policy_id        text NOT NULL,
        version          int NOT NULL,
        name             text NOT NULL,
        rank             int NOT NULL,
        policy           text NOT NULL,  -- SlaPolicy as JSON
        deleted          boolean NOT NULL,
        updated_by       text NOT NULL,
        updated_at       timestamptz NOT NULL,
        updated_position bigint NOT NULL,
        rank_position    bigint NOT NULL,
        PRIMARY KEY (tenant_id, policy_id)
    );
    CREATE TABLE support_sla_policy_versions (
        tenant_id text NOT NULL,
        policy_id text NOT NULL,
        version   int NOT NULL,
        name      text NOT NULL,
        policy    text NOT NULL,
        saved_by  text NOT NULL,
        saved_at  timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, policy_id, version)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            ev, tenant = rec.event, rec.tenant_id
            if isinstance(ev, SupportSlaCalendarSaved):
                body = _encoder.encode(ev.calendar).decode()
                await conn.execute(_CALENDAR, tenant, ev.calendar_id, ev.version, ev.name, body, ev.by,
                                   rec.created_at, rec.position)
                await conn.execute(_CALENDAR_VERSION, tenant, ev.calendar_id, ev.version, ev.name, body, ev.by,
                                   rec.created_at)
            elif isinstance(ev, SupportSlaCalendarDeleted):
                await conn.execute(_CALENDAR_DELETED, tenant, ev.calendar_id, ev.version, ev.by, rec.created_at,
                                   rec.position)
            elif isinstance(ev, SupportSlaPolicySaved):
                body = _encoder.encode(ev.policy).decode()
                await conn.execute(_POLICY, tenant, ev.policy_id, ev.version, ev.name, ev.rank, body, ev.by,
                                   rec.created_at, rec.position)
                await conn.execute(_POLICY_VERSION, tenant, ev.policy_id, ev.version, ev.name, body, ev.by,
                                   rec.created_at)
            elif isinstance(ev, SupportSlaPolicyDeleted):
                await conn.execute(_POLICY_DELETED, tenant, ev.policy_id, ev.version, ev.by, rec.created_at,
                                   rec.position)
            elif isinstance(ev, SupportSlaPoliciesOrdered):
                await conn.execute(_ORDERED, tenant, ev.policy_ids, rec.position)


_CALENDAR_COLUMNS = "calendar_id, version, name, calendar, updated_by, updated_at"
_POLICY_COLUMNS = "policy_id, version, name, rank, policy, updated_by, updated_at"


async def list_calendars(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's live calendars by id."""
    return await conn.fetch(f"SELECT {_CALENDAR_COLUMNS} FROM support_sla_calendars"
                            " WHERE tenant_id = $1 AND NOT deleted ORDER BY calendar_id", tenant_id)


async def fetch_calendar(conn: Queryable, tenant_id: str, calendar_id: str) -> asyncpg.Record | None:
    """One live calendar of the tenant."""
    return await conn.fetchrow(f"SELECT {_CALENDAR_COLUMNS} FROM support_sla_calendars"
                               " WHERE tenant_id = $1 AND calendar_id = $2 AND NOT deleted", tenant_id, calendar_id)


async def fetch_calendar_version(conn: Queryable, tenant_id: str, calendar_id: str,
                                 version: int) -> asyncpg.Record | None:
    """One saved version of a calendar (kept after later saves and deletion)."""
    return await conn.fetchrow(
        "SELECT calendar_id, version, name, calendar, saved_by AS updated_by, saved_at AS updated_at"
        " FROM support_sla_calendar_versions WHERE tenant_id = $1 AND calendar_id = $2 AND version = $3",
        tenant_id, calendar_id, version)


async def last_calendar_version(conn: Queryable, tenant_id: str, calendar_id: str) -> int | None:
    """The latest version of a calendar, deleted or not (None: never saved)."""
    value = await conn.fetchval("SELECT version FROM support_sla_calendars WHERE tenant_id = $1 AND calendar_id = $2",
                                tenant_id, calendar_id)
    return None if value is None else int(value)


async def list_policies(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's live policies in matching order."""
    return await conn.fetch(f"SELECT {_POLICY_COLUMNS} FROM support_sla_policies"
                            " WHERE tenant_id = $1 AND NOT deleted ORDER BY rank, policy_id", tenant_id)


async def fetch_policy(conn: Queryable, tenant_id: str, policy_id: str) -> asyncpg.Record | None:
    """One live policy of the tenant."""
    return await conn.fetchrow(f"SELECT {_POLICY_COLUMNS} FROM support_sla_policies"
                               " WHERE tenant_id = $1 AND policy_id = $2 AND NOT deleted", tenant_id, policy_id)


async def fetch_policy_version(conn: Queryable, tenant_id: str, policy_id: str, version: int) -> asyncpg.Record | None:
    """One saved version of a policy (kept after later saves and deletion)."""
    return await conn.fetchrow(
        "SELECT policy_id, version, name, policy, saved_by AS updated_by, saved_at AS updated_at"
        " FROM support_sla_policy_versions WHERE tenant_id = $1 AND policy_id = $2 AND version = $3",
        tenant_id, policy_id, version)


async def policies_using(conn: Queryable, tenant_id: str, calendar_id: str) -> list[str]:
    """The live policies that use a calendar."""
    rows = await conn.fetch("SELECT policy_id FROM support_sla_policies WHERE tenant_id = $1 AND NOT deleted"
                            " AND policy::jsonb ->> 'calendar_id' = $2 ORDER BY policy_id", tenant_id, calendar_id)
    return [r["policy_id"] for r in rows]
