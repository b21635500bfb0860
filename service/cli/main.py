"""The `roomlog` command: serve, migrate, tenant create, key create|list|revoke, replay."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import msgspec
import structlog

from projections.replay import ALL_PROJECTIONS, ReplayProgress, projection_by_name, replay
from schemas.api import USER_ID_RULE, is_user_id
from schemas.config import Settings
from schemas.errors import NotFound
from service.cli.embedded import EmbeddedServers, SeaweedFS
from service.cli.supervisor import Supervisor
from service.config import load_settings, settings_env
from service.domain.authorization import TENANT_ROLES
from service.identity.api_keys import create_key, list_keys, revoke_key
from service.identity.auth import AUTH_CACHE_SECONDS
from service.identity.tenants import create_tenant
from service.observability.logs import configure_logging
from service.runtime import prepare_database

log = structlog.get_logger("roomlog.cli")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `roomlog` console script."""
    args = _parser().parse_args(argv)
    settings = load_settings(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=args.data_dir,
        workers=getattr(args, "workers", None),
        log_json=True if args.log_json else None,
        log_level=args.log_level,
    )
    configure_logging(json=settings.log_json, level=settings.log_level)
    args.func(args, settings)


def _global_options(*, default: object) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--data-dir", default=default,
                         help="where the embedded servers keep their data (default ./.roomlog)")
    options.add_argument("--log-json", action="store_true", default=default, help="log one JSON object per line")
    options.add_argument("--log-level", default=default, help="debug, info, warning or error (default info)")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roomlog", description=__doc__, parents=[_global_options(default=None)])
    # The global options are accepted after the command too; there they must not reset what came before it.
    after = [_global_options(default=argparse.SUPPRESS)]
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
            help: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, parents=after)

    serve = add(sub, "serve", help="run the HTTP service (embedded PostgreSQL + NATS unless URLs are set)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=_serve)

    migrate = add(sub, "migrate", help="apply database migrations and build projections")
    migrate.set_defaults(func=_migrate)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(required=True, metavar="ACTION")
    create = add(tenant, "create", help="create a tenant and print its API key once")
    create.add_argument("name")
    create.add_argument("--rate-limit", type=int, help="requests/s for the tenant (0 = unlimited; default 100)")
    create.add_argument("--send-rate-limit", type=int, help="messages/s per user (0 = unlimited; default 20)")
    create.add_argument("--admin-user", default="admin", type=_user_id,
                        help="user id of the tenant's first admin (default admin)")
    create.set_defaults(func=_tenant_create)

    key = sub.add_parser("key", help="manage a tenant's API keys").add_subparsers(required=True, metavar="ACTION")
    key_create = add(key, "create", help="create an API key for a tenant and print it once")
    key_create.add_argument("tenant_id")
    key_create.add_argument("--name", default="", help="what the key is for (shown when listing)")
    key_create.add_argument("--role", choices=TENANT_ROLES, default="admin",
                            help="the most a caller with this key may do (default admin)")
    key_create.set_defaults(func=_key_create)
    key_list = add(key, "list", help="list a tenant's API keys (prefixes only)")
    key_list.add_argument("tenant_id")
    key_list.set_defaults(func=_key_list)
    key_revoke = add(key, "revoke", help="revoke an API key by its id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=_key_revoke)

    rep = add(sub, "replay", help="rebuild projections from the log and swap them in")
    rep.add_argument("--projection", choices=[p.name for p in ALL_PROJECTIONS], help="only this one")
    rep.add_argument("--verify", action="store_true", help="compare with the live tables before swapping")
    rep.add_argument("--no-swap", action="store_true", help="build and verify only; keep the live tables")
    rep.set_defaults(func=_replay)
    return parser


class _Servers:
    """The database and NATS to use: the configured URLs, or embedded servers started for this command.

    `supervise` (serve) keeps the embedded servers running: one that dies is restarted.
    """

    def __init__(self, settings: Settings, *, need_nats: bool, supervise: bool = False) -> None:
        self.settings = settings
        self.need_nats = need_nats
        self.supervise = supervise
        # serve without an S3 URL runs the embedded object store too
        self.need_s3 = supervise and settings.s3_url is None
        self.embedded: EmbeddedServers | None = None
        self.supervisor: Supervisor | None = None
        self.own_s3: SeaweedFS | None = None

    def __enter__(self) -> Settings:
        if self.settings.database_url and (self.settings.nats_url or not self.need_nats):
            return self._with_own_s3() if self.need_s3 else self.settings
        self.embedded = EmbeddedServers(Path(self.settings.data_dir), with_nats=self.need_nats, with_s3=self.need_s3)
        database_url, nats_url = self.embedded.start()
        if self.supervise:
            self.supervisor = Supervisor(self.embedded.supervised())
            self.supervisor.start()
        s3 = self.embedded.s3
        return msgspec_replace(
            self.settings,
            database_url=self.settings.database_url or database_url,
            nats_url=self.settings.nats_url or nats_url if self.need_nats else None,
            **({"s3_url": s3.url, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key} if s3 else {}),
        )

    def _with_own_s3(self) -> Settings:
        """PostgreSQL and NATS are configured, the object store is not: run only the embedded one."""
        self.own_s3 = s3 = SeaweedFS(Path(self.settings.data_dir).resolve() / "seaweedfs")
        s3.start()
        self.supervisor = Supervisor([s3])
        self.supervisor.start()
        return msgspec_replace(self.settings, s3_url=s3.url, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key)

    def __exit__(self, *exc: object) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.own_s3 is not None:
            self.own_s3.stop()
        if self.embedded is None:
            return
        postgres_stopped = self.embedded.stop()
        if self.supervise:
            log.info("embedded servers stopped")
        elif postgres_stopped:
            # A one-shot command beside a running server reuses its PostgreSQL and leaves it running.
            log.info("embedded postgres started for this command stopped")


def _user_id(value: str) -> str:
    if not is_user_id(value):
        raise argparse.ArgumentTypeError(f"a user id is {USER_ID_RULE}")
    return value


def msgspec_replace(settings: Settings, **changes: object) -> Settings:
    """A copy of settings with some fields changed."""
    return msgspec.structs.replace(settings, **changes)


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from service.web.ws_protocol import AbortableWebSocketProtocol

    with _Servers(settings, need_nats=True, supervise=True) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        if asyncio.run(_tenant_count(ready.database_url)) == 0:
            command = f"{_runnable_self()} --data-dir {ready.data_dir} tenant create my-team"
            if ready.log_json:
                log.info("no tenants yet: create one to get an API key", command=command)
            else:
                print(
                    f"\nroomlog: no tenants yet. Create one and get its API key with:\n    {command}\n"
                    "then call the API with the headers  X-API-Key: <key>  and  X-User-Id: admin"
                    " (or any user id)\n",
                    file=sys.stderr,
                )
        # uvicorn re-raises SIGTERM once it has shut down; exit through Python then, so the embedded
        # servers are stopped on the way out instead of being orphaned by the default action.
        signal.signal(signal.SIGTERM, _exit_quietly)
        # Workers are separate processes: hand them the settings through the environment.
        os.environ.update(settings_env(ready))
        log.info("roomlog listening", url=f"http://{ready.host}:{ready.port}", workers=ready.workers)
        uvicorn.run(
            "service.app:app_from_env",
            factory=True,
            host=ready.host,
            port=ready.port,
            workers=ready.workers if ready.workers > 1 else None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # httptools with limits on a request head's size and time (service.web.http_protocol).
            http="service.web.http_protocol:LimitedHttpToolsProtocol",
            # roomlog reads no forwarded headers (the login throttle uses the peer address on purpose).
            proxy_headers=False,
            # Frames are small JSON; compressing each cost 11% of the server's CPU in bench/fanout.py.
            ws_per_message_deflate=False,
            # Lets the gateway drop a client whose socket stopped draining (see service/web/ws_protocol.py).
            ws=AbortableWebSocketProtocol,
        )


def _runnable_self() -> str:
    """The path of this `roomlog` (relative when under the working directory): it may not be on the user's PATH."""
    me = Path(sys.argv[0]).resolve()
    if me.name != "roomlog":  # not the console script (python -m, a test harness)
        return "roomlog"
    relative = os.path.relpath(me)
    return relative if not relative.startswith("..") else str(me)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        print("database is up to date")


def _tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    async def create(database_url: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            tenant = await create_tenant(conn, args.name, rate_limit=args.rate_limit,
                                         send_rate_limit=args.send_rate_limit, admin_user_id=args.admin_user)
        finally:
            await conn.close()
        print(f"tenant_id: {tenant.tenant_id}\napi_key:   {tenant.api_key}\nadmin:     {args.admin_user}"
              f"\n(the key is shown only this once; X-User-Id: {args.admin_user} acts as the tenant admin)")

    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        asyncio.run(create(ready.database_url))


def _key_create(args: argparse.Namespace, settings: Settings) -> None:
    async def create(conn: asyncpg.Connection) -> int:
        try:
            key = await create_key(conn, args.tenant_id, name=args.name, role=args.role)
        except NotFound:
            print(f"roomlog: no tenant {args.tenant_id}", file=sys.stderr)
            return 1
        print(f"key_id:  {key.key_id}\napi_key: {key.api_key}\nrole:    {key.role}\n(the key is shown only this once)")
        return 0

    sys.exit(_with_connection(settings, create))


def _key_list(args: argparse.Namespace, settings: Settings) -> None:
    async def show(conn: asyncpg.Connection) -> int:
        rows = await list_keys(conn, args.tenant_id)
        if not rows and await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", args.tenant_id) is None:
            print(f"roomlog: no tenant {args.tenant_id}", file=sys.stderr)
            return 1
        for row in rows:
            state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M:%S}" if row["revoked_at"] else "active"
            print(f"{row['key_id']}  {row['prefix']}…  {row['role']:<6}  {row['created_at']:%Y-%m-%d %H:%M:%S}"
                  f"  {state}  {row['name']}")
        return 0

    sys.exit(_with_connection(settings, show))


def _key_revoke(args: argparse.Namespace, settings: Settings) -> None:
    async def revoke(conn: asyncpg.Connection) -> int:
        if await revoke_key(conn, args.key_id, tenant_id=None) is None:
            print(f"roomlog: no API key {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id} (running instances stop accepting it within {AUTH_CACHE_SECONDS:g}s)")
        return 0

    sys.exit(_with_connection(settings, revoke))


def _with_connection(settings: Settings, run: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    """Run `run` with a connection to the (migrated) database; its exit code."""

    async def connected(database_url: str) -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await run(conn)
        finally:
            await conn.close()

    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        return asyncio.run(connected(ready.database_url))


def _replay(args: argparse.Namespace, settings: Settings) -> None:
    projections = [projection_by_name(args.projection)] if args.projection else list(ALL_PROJECTIONS)

    def progress(p: ReplayProgress) -> None:
        print(f"\r  {p.events:>10} events  position {p.position:>10}  {p.events_per_second:>9.0f} events/s",
              end="", file=sys.stderr, flush=True)

    async def run(database_url: str) -> int:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            report = await replay(pool, projections, verify=args.verify, swap=not args.no_swap, on_progress=progress)
        finally:
            await pool.close()
        print(file=sys.stderr)
        print(f"replayed {report.events} events into {', '.join(report.projections)} in {report.seconds:.2f}s"
              f" ({report.events_per_second:.0f} events/s)")
        for table, diff in report.differences.items():
            print(f"  verify {table}: {'identical' if diff == 0 else f'{diff} rows differ'}")
        print("swapped in" if report.swapped else "live tables left unchanged (--no-swap)")
        return 1 if any(report.differences.values()) else 0

    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        code = asyncio.run(run(ready.database_url))
    sys.exit(code)


async def _tenant_count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tenants"))
    finally:
        await conn.close()
