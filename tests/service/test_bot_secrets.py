"""Bots' webhook secrets stay out of the log (service/consumers/bot_secrets.py, migration 071)."""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any

import asyncpg
import httpx

from eventstore.transfer import export_tenant
from projections.replay import projection_by_name, replay
from service.consumers.bots import bot_target
from service.runtime import Runtime
from tests.conftest import Tenant


def a_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


async def register(client: httpx.AsyncClient, tenant: Tenant, delivery: dict[str, Any]) -> dict[str, Any]:
    body = {"user_id": "aurora", "display_name": "Aurora", "delivery": delivery, "triggers": ["mention"]}
    response = await client.post("/bots", json=body, headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def anywhere_in_the_log(pool: asyncpg.Pool, tenant: Tenant, text: str) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND"
                                    " (data::text LIKE $2 OR metadata::text LIKE $2))", tenant.tenant_id, f"%{text}%"))


async def signing_secret(pool: asyncpg.Pool, tenant: Tenant) -> str | None:
    target = await bot_target(pool, tenant.tenant_id, "bot:aurora")
    return target.secret if target is not None else None


async def test_a_given_or_generated_secret_signs_deliveries_and_is_in_neither_the_log_nor_an_export(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    given = a_secret()
    await register(client, tenant, {"webhook_url": "http://127.0.0.1:9/bot", "secret": given})
    assert await signing_secret(pool, tenant) == given
    assert not await anywhere_in_the_log(pool, tenant, given)
    export = b"".join([chunk async for chunk in export_tenant(pool, tenant.tenant_id)])
    assert b"bot.registered" in export and given.encode() not in export
    await client.delete("/bots/aurora", headers=tenant.as_user("admin"))
    generated = (await register(client, tenant, {"webhook_url": "http://127.0.0.1:9/bot"}))["secret"]
    assert generated.startswith("whsec_") and await signing_secret(pool, tenant) == generated
    assert not await anywhere_in_the_log(pool, tenant, generated)


async def test_a_new_secret_replaces_the_old_row_and_deleting_the_bot_deletes_its_secret(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    admin, first, second = tenant.as_user("admin"), a_secret(), a_secret()
    await register(client, tenant, {"webhook_url": "http://127.0.0.1:9/bot", "secret": first})
    patched = await client.patch("/bots/aurora", headers=admin,
                                 json={"delivery": {"webhook_url": "http://127.0.0.1:9/bot2", "secret": second}})
    assert patched.status_code == 200, patched.text
    assert await signing_secret(pool, tenant) == second
    renamed = await client.patch("/bots/aurora", headers=admin, json={"display_name": "Au"})
    assert renamed.status_code == 200, renamed.text
    assert await signing_secret(pool, tenant) == second  # a change without a delivery keeps the secret
    stored = await pool.fetch("SELECT secret FROM bot_secrets WHERE tenant_id = $1", tenant.tenant_id)
    assert [r["secret"] for r in stored] == [second]
    assert not await anywhere_in_the_log(pool, tenant, second)
    assert (await client.delete("/bots/aurora", headers=admin)).status_code == 200
    assert await pool.fetchval("SELECT count(*) FROM bot_secrets WHERE tenant_id = $1", tenant.tenant_id) == 0


async def test_replay_rebuilds_the_bots_with_the_same_secrets(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    given = a_secret()
    await register(client, tenant, {"webhook_url": "http://127.0.0.1:9/bot", "secret": given})
    report = await replay(pool, [projection_by_name("bots")], verify=True)
    assert report.differences == {"bots": 0}
    assert await signing_secret(pool, tenant) == given


async def test_the_migration_moves_a_secret_written_into_the_log_before_it_out_of_the_events(
    client: httpx.AsyncClient, pool: asyncpg.Pool, runtime: Runtime, tenant: Tenant
) -> None:
    legacy = a_secret()
    await register(client, tenant, {"webhook_url": "http://127.0.0.1:9/bot"})
    stream = f"bot:{tenant.tenant_id}:aurora"
    # The event as builds before migration 071 wrote it: the plaintext secret in the payload.
    await pool.execute("UPDATE events SET data = (data - 'secret_id') || jsonb_build_object('secret', $2::text)"
                       " WHERE stream_id = $1", stream, legacy)
    sql = resources.files("eventstore.migrations").joinpath("071_bot_secrets.sql").read_text()
    await pool.execute(sql[sql.index("INSERT INTO bot_secrets"):])
    assert not await anywhere_in_the_log(pool, tenant, legacy)
    await replay(pool, [projection_by_name("bots")])
    assert await signing_secret(pool, tenant) == legacy
