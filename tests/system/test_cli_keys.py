"""`roomlog key create|list|revoke` run as real processes against the session's database."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest

from service.cli.main import main
from service.identity.api_keys import create_key, hash_key
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.system.conftest import Completed, roomlog_env, run_roomlog


async def roomlog(database_url: str, *args: str) -> Completed:
    """Run `roomlog ARGS` with DATABASE_URL pointing at the session's database."""
    return await run_roomlog(*args, env=roomlog_env(database_url=database_url))


def field(output: str, name: str) -> str:
    """The value printed on the `name:` line of a command's output."""
    match = re.search(rf"^{name}:\s+(\S+)$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


async def test_key_create_prints_a_key_that_works_for_the_tenant(
    database_url: str, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    done = await roomlog(database_url, "key", "create", tenant.tenant_id, "--name", "ci")
    assert done.returncode == 0, done.stderr
    headers = {"X-API-Key": field(done.stdout, "api_key"), "X-User-Id": "alice"}
    assert (await client.get("/rooms", headers=headers)).status_code == 200


async def test_key_create_stores_the_name_and_role(database_url: str, tenant: Tenant, pool: asyncpg.Pool) -> None:
    done = await roomlog(database_url, "key", "create", tenant.tenant_id, "--name", "reports", "--role", "agent")
    row = await pool.fetchrow("SELECT tenant_id, name, role FROM api_keys WHERE key_id = $1",
                              field(done.stdout, "key_id"))
    assert row is not None
    assert tuple(row) == (tenant.tenant_id, "reports", "agent")


async def test_key_create_for_an_unknown_tenant_exits_1(database_url: str) -> None:
    done = await roomlog(database_url, "key", "create", "tn_nope")
    assert (done.returncode, done.stderr.strip()) == (1, "roomlog: no tenant tn_nope")


def test_key_create_rejects_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    # Argument parsing fails before any connection is made, so this runs in-process.
    with pytest.raises(SystemExit) as exit_:
        main(["key", "create", "tn_any", "--role", "owner"])
    assert exit_.value.code == 2
    assert "invalid choice: 'owner'" in capsys.readouterr().err


async def test_key_list_prints_each_key_by_prefix_never_the_key(
    database_url: str, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    created = await create_key(pool, tenant.tenant_id, name="second", role="agent")
    api_key, key_id = created.api_key, created.key_id
    done = await roomlog(database_url, "key", "list", tenant.tenant_id)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines] == [f"{tenant.api_key[:12]}…", f"{api_key[:12]}…"]
    assert api_key not in done.stdout and tenant.api_key not in done.stdout
    assert lines[1].startswith(key_id)
    assert lines[1].split()[2:3] + lines[1].split()[-2:] == ["agent", "active", "second"]


async def test_key_list_for_an_unknown_tenant_exits_1(database_url: str) -> None:
    done = await roomlog(database_url, "key", "list", "tn_nope")
    assert (done.returncode, done.stderr.strip()) == (1, "roomlog: no tenant tn_nope")


async def test_key_revoke_makes_the_key_invalid(
    database_url: str, tenant: Tenant, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    created = await create_key(runtime.pool, tenant.tenant_id, name="doomed", role="admin")
    headers = {"X-API-Key": created.api_key, "X-User-Id": "alice"}
    assert (await client.get("/rooms", headers=headers)).status_code == 200
    done = await roomlog(database_url, "key", "revoke", created.key_id)
    assert done.returncode == 0, done.stderr
    # The CLI cannot reach this process's auth cache (a running instance learns within its ttl, 5 s);
    # drop the cached answer instead of waiting it out.
    runtime.auth.api_keys.forget(hash_key(created.api_key))
    assert (await client.get("/rooms", headers=headers)).status_code == 401


async def test_key_revoke_of_an_unknown_key_exits_1(database_url: str) -> None:
    done = await roomlog(database_url, "key", "revoke", "key_nope")
    assert (done.returncode, done.stderr.strip()) == (1, "roomlog: no API key key_nope")
