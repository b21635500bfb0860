"""Store credit: one ledger stream per customer (`support-credit:<tenant>:<customer_id>`), folded into entries.

The balance is the sum of a customer's entries per currency; an entry is keyed by its stream and seq, so a
repeat or a replay adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent, SupportCreditAdded


def credit_stream(tenant_id: str, customer_id: str) -> str:
    return f"support-credit:{tenant_id}:{customer_id}"


class SupportCreditProjection:
    name = "support_credit"
    version = 1
    tables = ("support_credit",)
    handles = frozenset({"support.credit.added"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE support_credit (
        tenant_id    text NOT NULL,
        customer_id  text NOT NULL,
        seq          bigint NOT NULL,
        amount_minor bigint NOT NULL,
        currency     text NOT NULL,
        reason       text,
        by_user      text NOT NULL,
        execution_id text,
        created_at   timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, customer_id, seq)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            if isinstance(rec.event, SupportCreditAdded):
                ev = rec.event
                await conn.execute(
                    "INSERT INTO support_credit (tenant_id, customer_id, seq, amount_minor, currency, reason, by_user,"
                    " execution_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    rec.tenant_id, ev.customer_id, rec.seq, ev.amount_minor, ev.currency, ev.reason, ev.by,
                    ev.execution_id, rec.created_at,
                )


async def credit_entries(conn: Queryable, tenant_id: str, customer_id: str) -> list[asyncpg.Record]:
    """The customer's credit entries, newest first."""
    return list(await conn.fetch(
        "SELECT * FROM support_credit WHERE tenant_id = $1 AND customer_id = $2 ORDER BY seq DESC",
        tenant_id, customer_id,
    ))
