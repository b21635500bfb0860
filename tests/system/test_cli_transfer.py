"""`roomlog export`, `import` and `erase` run as real processes: stdout/stdin, exit codes, the refusal message."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import Tenant, create_database
from tests.system.conftest import ROOMLOG, roomlog_env, run_roomlog


async def test_export_to_stdout_imports_from_stdin_and_a_damaged_file_exits_1(
    database_url: str, pg_server_url: str, tenant: Tenant, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    room = (await client.post("/rooms", json={"type": "group", "members": ["bob"]},
                              headers=tenant.as_user("alice"))).json()["room_id"]
    sent = await client.post(f"/rooms/{room}/messages", json={"content": "carried over"}, headers=tenant.as_user("bob"))
    assert sent.status_code == 201, sent.text
    exported = await run_roomlog("export", "--tenant", tenant.tenant_id, env=roomlog_env(database_url=database_url))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.strip().endswith(f"exported 4 events of tenant {tenant.tenant_id}")

    target = await create_database(pg_server_url, "roomlog_cli_import")
    proc = await asyncio.create_subprocess_exec(
        ROOMLOG, "import", "-", env=roomlog_env(database_url=target),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(exported.stdout.encode()), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(f"imported 4 events in 1 streams of tenant {tenant.tenant_id}")

    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(exported.stdout.replace("carried over", "carried  over"))
    refused = await run_roomlog("import", str(damaged), env=roomlog_env(database_url=await create_database(
        pg_server_url, "roomlog_cli_refused")))
    assert refused.returncode == 1
    assert "import refused, nothing written: checksum mismatch" in refused.stderr


async def test_erase_a_whole_tenant_leaves_its_words_in_no_table(
    database_url: str, nats_url: str, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    marker = f"zq{uuid.uuid4().hex[:12]}"
    room = (await client.post("/rooms", json={"type": "group", "members": ["bob"], "name": f"room {marker}"},
                              headers=tenant.as_user("alice"))).json()["room_id"]
    await client.patch(f"/rooms/{room}", json={"metadata": {"topic": marker}}, headers=tenant.as_user("alice"))
    sent = await client.post(f"/rooms/{room}/messages", json={"content": f"words {marker}"},
                             headers=tenant.as_user("bob"))
    assert sent.status_code == 201, sent.text
    done = await run_roomlog("erase", "--tenant", tenant.tenant_id,
                             env=roomlog_env(database_url=database_url, nats_url=nats_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("erased the content of 3 events (1 messages) of the whole tenant")
    conn = await asyncpg.connect(database_url)
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        holding = [t for t in tables if await conn.fetchval(
            f'SELECT count(*) FROM public."{t}" AS t WHERE t::text LIKE $1', f"%{marker}%")]
        name = await conn.fetchval("SELECT name FROM rooms WHERE room_id = $1", room)
    finally:
        await conn.close()
    assert holding == []
    assert name is None
