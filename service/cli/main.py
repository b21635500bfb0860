"""The `roomlog` command: serve, migrate, tenant create, key create|list|revoke, replay, export, import."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import asyncpg
import msgspec
import nats
import structlog
from tqdm import tqdm

from projections.replay import ALL_PROJECTIONS, BATCH_SIZE, ReplayProgress, projection_by_name, replay
from schemas.api import USER_ID_RULE, is_user_id
from schemas.config import Settings
from schemas.errors import ImportRefused, NotFound, TenantNotFound
from schemas.roles import TENANT_ROLES
from service.cli.embedded import EmbeddedServers, SeaweedFS
from service.cli.supervisor import Supervisor
from service.cli.transfer import export_file, import_file
from service.commands.erasure import ErasureReport, erase
from service.config import load_settings, settings_env
from service.identity.api_keys import create_key, list_keys, revoke_key
from service.identity.auth import AUTH_CACHE_SECONDS
from service.identity.tenants import create_tenant, tenant_exists
from service.observability.logs import configure_logging
from service.observability.metrics import multiprocess_dir, serve_metrics_port, use_multiprocess_dir
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
    # Two connections: the messages projection on one, everything else on the other (bench/README.md).
    rep.add_argument("--parallel", type=int, default=min(2, os.cpu_count() or 1), choices=range(1, 9), metavar="N",
                     help="groups of projections applied on connections of their own (default 2; 1 on one core)")
    rep.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"events per batch (default {BATCH_SIZE})")
    rep.set_defaults(func=_replay)

    export = add(sub, "export", help="write a tenant's events as JSON Lines (header, events, trailer)")
    export.add_argument("--tenant", required=True, help="the tenant's id")
    export.add_argument("--since", type=_tenant_position, default=0,
                        help="only the tenant's events after this tenant position (a previous export's `until`)")
    export.add_argument("--output", default="-", help="the file to write, or - for stdout (default)")
    export.set_defaults(func=_export)

    imp = add(sub, "import", help="import an export file in one transaction and rebuild the tenant's read models")
    imp.add_argument("file", help="an export file, or - for stdin")
    imp.set_defaults(func=_import)

    erase = add(sub, "erase", help="erase a tenant's content (or one user's messages) from the log and everywhere")
    erase.add_argument("--tenant", required=True, help="the tenant's id")
    erase.add_argument("--user", type=_user_id, help="only the messages this user wrote")
    erase.set_defaults(func=_erase)
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


def _tenant_position(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError("a tenant position is a whole number >= 0")
    return int(value)


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
        # Every worker writes its metrics into one directory, so any of them (or the metrics port) reports all.
        use_multiprocess_dir(Path(multiprocess_dir() or Path(ready.data_dir) / "prometheus"))
        if ready.metrics and ready.metrics_port is not None:
            serve_metrics_port(ready.host, ready.metrics_port)
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
    bar: tqdm[NoReturn] | None = None

    def progress(p: ReplayProgress) -> None:
        nonlocal bar
        if bar is None:
            if p.resumed_from:
                print(f"resuming an interrupted replay from position {p.resumed_from}", file=sys.stderr)
            bar = tqdm(total=max(p.last_position, p.position), initial=p.resumed_from, unit=" events",
                       unit_scale=True, smoothing=0.1, dynamic_ncols=True, file=sys.stderr)
        bar.total = max(bar.total or 0, p.position)
        bar.update(p.position - bar.n)

    async def run(database_url: str) -> int:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=args.parallel + 1)
        try:
            report = await replay(pool, projections, verify=args.verify, swap=not args.no_swap,
                                  batch_size=args.batch_size, parallel=args.parallel, on_progress=progress)
        finally:
            await pool.close()
            if bar is not None:
                bar.close()
        resumed = f", resumed from position {report.resumed_from}" if report.resumed_from else ""
        print(f"replayed {report.events} events into {', '.join(report.projections)} in {report.seconds:.2f}s"
              f" ({report.events_per_second:.0f} events/s{resumed})")
        for table, diff in report.differences.items():
            print(f"  verify {table}: {'identical' if diff == 0 else f'{diff} rows differ'}")
        print("swapped in" if report.swapped else "live tables left unchanged (--no-swap)")
        return 1 if any(report.differences.values()) else 0

    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        try:
            code = asyncio.run(run(ready.database_url))
        except KeyboardInterrupt:
            print("\nreplay interrupted; run it again to carry on from where it stopped", file=sys.stderr)
            code = 130
    sys.exit(code)


def _export(args: argparse.Namespace, settings: Settings) -> None:
    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        try:
            lines = asyncio.run(export_file(ready.database_url, args.tenant, since=args.since, output=args.output))
        except TenantNotFound as e:
            print(f"roomlog: {e.message}", file=sys.stderr)
            sys.exit(1)
    print(f"exported {lines - 2} events of tenant {args.tenant}", file=sys.stderr)


def _import(args: argparse.Namespace, settings: Settings) -> None:
    with _Servers(settings, need_nats=False) as ready:
        assert ready.database_url is not None
        asyncio.run(prepare_database(ready.database_url))
        try:
            imported = asyncio.run(import_file(ready.database_url, args.file))
        except ImportRefused as e:
            print(f"roomlog: import refused, nothing written: {e.message}", file=sys.stderr)
            sys.exit(1)
    print(f"imported {imported.events} events in {imported.streams} streams of tenant {imported.tenant_id};"
          " its read models are rebuilt")


def _erase(args: argparse.Namespace, settings: Settings) -> None:
    async def run(database_url: str, nats_url: str) -> ErasureReport | None:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        nc = await nats.connect(nats_url.split(","))
        try:
            if not await tenant_exists(pool, args.tenant):
                return None
            return await erase(pool, nc.jetstream(), args.tenant, user_id=args.user, erased_by="roomlog erase")
        finally:
            await nc.close()
            await pool.close()

    with _Servers(settings, need_nats=True) as ready:
        assert ready.database_url is not None and ready.nats_url is not None
        asyncio.run(prepare_database(ready.database_url))
        report = asyncio.run(run(ready.database_url, ready.nats_url))
    if report is None:
        print(f"roomlog: no tenant {args.tenant}", file=sys.stderr)
        sys.exit(1)
    whose = f"user {args.user}" if args.user else "the whole tenant"
    print(f"erased the content of {report.events} events ({report.messages} messages) of {whose};"
          f" {report.jetstream_messages} JetStream messages overwritten")


async def _tenant_count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tenants"))
    finally:
        await conn.close()
