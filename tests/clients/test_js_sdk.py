"""The JavaScript SDK's own tests (`node --test clients/js/test`) against a live `roomlog serve`.

The Node tests drive everything they can themselves; what they cannot — stopping and restarting the server
while messages are sent — they ask of a small control server run here: POST /restart stops `roomlog serve`
(SIGTERM, so connected clients get `server.shutdown`), sends messages through an in-process app on the same
database while it is down, and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.clients._node import JS, node
from tests.conftest import Tenant, make_tenant, serving
from tests.system._servers import SERVE_ENV, start_serve, wait_live
from tests.system.conftest import Processes, Serve, roomlog_env

NODE_SECONDS = 120


@dataclass
class Live:
    """The current `roomlog serve` (replaced by each restart) and how to start another like it."""

    procs: Processes
    serve: Serve
    env: dict[str, str]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str) -> AsyncIterator[Live]:
    with Processes(tmp_path_factory.mktemp("js-sdk")) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url)
        await wait_live(serve, await make_tenant(database_url))
        yield Live(procs, serve, roomlog_env(database_url=database_url, nats_url=nats_url, **SERVE_ENV))


def control_app(live: Live, client: httpx.AsyncClient, tenant: Tenant) -> Starlette:
    async def restart(request: Request) -> JSONResponse:
        ask = await request.json()
        code = await live.serve.signal_and_wait(signal.SIGTERM)
        assert code == 0, live.serve.stderr()[-3000:]
        seqs = []
        for n in range(ask["count"]):
            response = await client.post(f"/rooms/{ask['room_id']}/messages", headers=tenant.as_user(ask["user"]),
                                          json={"content": f"{ask['prefix']}{n}", "client_msg_id": f"away-{n}"})
            assert response.status_code == 201, response.text
            seqs.append(response.json()["seq"])
        live.serve = live.procs.serve(env=live.env, port=live.serve.port)
        await live.serve.wait_healthy()
        return JSONResponse({"seqs": seqs})

    return Starlette(routes=[Route("/restart", restart, methods=["POST"])])


async def test_the_node_test_suite_of_the_js_sdk_passes_against_a_live_server(
    live: Live, client: httpx.AsyncClient, tenant: Tenant, database_url: str, pool: asyncpg.Pool,
) -> None:
    # A tenant allowed one message per user and second, set before the server first reads its limits.
    limited = await make_tenant(database_url)
    await pool.execute("UPDATE tenants SET send_rate_limit = 1 WHERE tenant_id = $1", limited.tenant_id)
    control = serving(control_app(live, client, tenant))
    control_host = await anext(control)
    env = dict(os.environ, ROOMLOG_URL=live.serve.base_url, ROOMLOG_API_KEY=tenant.api_key,
               ROOMLOG_LIMITED_API_KEY=limited.api_key, ROOMLOG_CONTROL_URL=f"http://{control_host}")
    proc = await asyncio.create_subprocess_exec(
        node(), "--experimental-websocket", "--no-warnings", "--test", "--test-reporter=tap",
        *sorted(str(p) for p in (JS / "test").glob("*.test.mjs")),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), NODE_SECONDS)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await anext(control, None)
    text = out.decode(errors="replace")
    print(text)  # the Node runner's report, shown with -s or -rP
    assert proc.returncode == 0, text + "\n" + live.serve.stderr()[-3000:]
    counts = dict(re.findall(r"^# (pass|fail) (\d+)$", text, re.MULTILINE))
    assert counts.get("fail") == "0" and int(counts.get("pass", 0)) >= 10, text
