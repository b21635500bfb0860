"""bench/chaos.py's fault drills, short: one 3-instance local cluster for the module, each drill under load.

Every drill must end with every acknowledged message in the log exactly once and delivered exactly once
to every WebSocket receiver (webhooks: every delivery id answered 200 exactly once).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.system.conftest import embedded_data_dir, pids_mentioning
from tests.system.test_local_cluster import HTTP_OFFSET, NATS_OFFSETS, free_base

INSTANCES = 3
SECONDS = 2.0


def load_chaos() -> ModuleType:
    """bench/chaos.py as a module (bench/ is not a package)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
    spec = importlib.util.spec_from_file_location("chaos", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module
    spec.loader.exec_module(module)
    return module


chaos = load_chaos()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """`local-cluster.py up --instances 3` with the drills' settings; `down` and a SIGKILL for leftovers after."""
    with embedded_data_dir("chaos") as data_dir:
        base = free_base((*NATS_OFFSETS, *(HTTP_OFFSET + i for i in range(INSTANCES))))
        try:
            chaos.up(data_dir, instances=INSTANCES, base_port=base + HTTP_OFFSET, nats_base_port=base)
            yield chaos.Cluster(data_dir)
        finally:
            chaos.down(data_dir)
            for pid in pids_mentioning(str(data_dir)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def api_key(cluster: Any, request: pytest.FixtureRequest) -> str:
    """A tenant of the test's own on the cluster."""
    _, key = chaos.create_tenant(cluster.plan.database_url, request.node.name[:40])
    return str(key)


def check(tally: Any) -> None:
    print("\n" + chaos.table([tally]))
    assert tally.acknowledged == tally.sent > 0, chaos.table([tally])
    assert tally.delivered == tally.acknowledged, chaos.table([tally])
    assert (tally.lost, tally.duplicated) == (0, 0), chaos.table([tally])


async def test_sigkill_of_a_nats_node_under_load_loses_and_doubles_nothing(cluster: Any, api_key: str) -> None:
    check(await chaos.drill_nats_node(cluster, api_key, seconds=SECONDS))


async def test_sigkill_of_an_instance_moves_its_clients_and_loses_nothing(cluster: Any, api_key: str) -> None:
    tally = await chaos.drill_instance_kill(cluster, api_key, seconds=SECONDS)
    check(tally)
    assert tally.notes["websocket resumes"] >= 1  # a receiver on the killed instance resumed elsewhere


async def test_a_postgres_restart_fails_requests_fast_with_503_and_the_service_recovers_by_itself(
    cluster: Any, api_key: str
) -> None:
    tally = await chaos.drill_postgres(cluster, api_key, seconds=SECONDS)
    check(tally)
    failures = tally.notes["failed attempts (retried)"]
    assert failures == "none" or set(failures) <= {"503 SERVICE_UNAVAILABLE"}, failures
    assert tally.notes.get("slowest 503 (s)", 0) < 1.0


async def test_an_instance_stopped_for_seconds_and_continued_loses_and_doubles_nothing(
    cluster: Any, api_key: str
) -> None:
    check(await chaos.drill_instance_stop(cluster, api_key, seconds=SECONDS, stop_seconds=3))


async def test_a_webhook_receiver_failing_then_recovering_gets_every_delivery_once(cluster: Any, api_key: str) -> None:
    tally = await chaos.drill_webhook(cluster, api_key, seconds=SECONDS, fail_seconds=2)
    check(tally)
    assert tally.notes["answered 500"] > 0
