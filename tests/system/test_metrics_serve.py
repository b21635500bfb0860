"""`roomlog serve --workers 2`: metrics of both workers on one metrics port, and request ids in the JSON log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.cli.embedded import free_port
from tests.conftest import make_tenant
from tests.system._servers import SERVE_ENV, WsClient, wait_health
from tests.system.conftest import Processes, roomlog_env

REQUESTS_COUNT = "roomlog_http_request_duration_seconds_count"


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())


def writing_pids(prometheus_dir: Path) -> set[str]:
    """The processes that have written request durations (prometheus-client names its files by pid)."""
    return {path.stem.rpartition("_")[2] for path in prometheus_dir.glob("histogram_*.db")}


async def test_two_workers_report_into_one_metrics_port_and_log_request_ids(
    tmp_path: Path, database_url: str, nats_url: str
) -> None:
    metrics_port = free_port()
    env = roomlog_env(database_url=database_url, nats_url=nats_url, **{
        **SERVE_ENV, "ROOMLOG_WORKERS": "2", "ROOMLOG_ACCESS_LOG": "true", "ROOMLOG_LOG_JSON": "true",
        "ROOMLOG_METRICS_PORT": str(metrics_port),
    })
    tenant = await make_tenant(database_url)
    data_dir = tmp_path / "data"
    with Processes(tmp_path) as procs:
        serve = procs.serve(env=env, data_dir=data_dir)
        await wait_health(serve, lambda body: body.get("status") == "ok")
        headers = tenant.as_user("alice")
        sent = 0
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=10) as api:
            # A fresh connection per request lets either worker accept it; go on until both have answered.
            for _ in range(30):
                batch = await asyncio.gather(*(api.get("/rooms", headers={**headers, "Connection": "close"})
                                               for _ in range(8)))
                assert {r.status_code for r in batch} == {200}
                sent += len(batch)
                if len(writing_pids(data_dir / "prometheus")) >= 2:
                    break
            assert len(writing_pids(data_dir / "prometheus")) == 2
            traced = await api.get("/rooms", headers={**headers, "X-Request-Id": "trace-serve-1"})
            sent += 1
            assert traced.headers["x-request-id"] == "trace-serve-1"
            assert (await api.get("/metrics")).status_code == 404  # served on the metrics port instead
            token = (await api.post("/tokens", headers=headers)).json()["token"]
        ws = await WsClient.open(serve.base_url, token)
        try:
            await ws.barrier()  # a pong: the connection is being served (and counted)
            async with httpx.AsyncClient(timeout=10) as scraper:
                text = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        finally:
            await ws.ws.close()
        assert total(text, REQUESTS_COUNT, route="/rooms", method="GET", status="200") == sent
        assert total(text, "roomlog_websocket_connections") == 1
        access = [json.loads(line) for line in serve.stderr().splitlines() if '"request_id"' in line]
        assert any(line["event"] == "request" and line["request_id"] == "trace-serve-1" for line in access)
