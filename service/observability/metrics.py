"""Prometheus metrics of one process, and their text exposition for `GET /metrics`.

`roomlog serve` runs prometheus-client in multiprocess mode (`use_multiprocess_dir`): every worker writes
its values to memory-mapped files in one directory and whichever worker answers `/metrics` reads all of
them, so `--workers N` reports the whole server. Without that directory (tests, embedding) the values
live in this process and `Metrics` exposes its own registry.

Labels are bounded: route templates (`/rooms/{room_id}/messages`), methods, status codes, outcomes,
projection and consumer names — never ids.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

from service.observability.gc_pauses import GcPauses

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "multiprocess_dir", "serve_metrics_port", "use_multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The route label of a request no route matched (404s of made-up paths): bounded, unlike the paths.
UNMATCHED = "unmatched"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
WEBHOOK_OUTCOMES = ("delivered", "retried", "dead_lettered", "webhook_deleted", "repeat_dropped")


def multiprocess_dir() -> str | None:
    """The multiprocess directory this process writes its values to, if any."""
    return os.environ.get(MULTIPROC_ENV) or None


def use_multiprocess_dir(path: Path) -> None:
    """Clear `path` of metric files and make this process (and the workers it starts) write metric values there."""
    path.mkdir(parents=True, exist_ok=True)
    # Values of an earlier run would be added to this one's. Only our files go: the directory may be the operator's.
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus-client picks its value store when first imported; this process may have imported it already.
    values.ValueClass = values.get_value_class()


def serve_metrics_port(host: str, port: int) -> None:
    """Serve every worker's metrics on `host:port` from a thread of this (the supervising) process."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


class Metrics:
    """Every metric roomlog records, created once per runtime; `render()` is the `/metrics` body."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._multiprocess = multiprocess_dir() is not None
        # Not the global registry: tests start several runtimes in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self._multiprocess else self.registry

        self.http_duration = Histogram(
            "roomlog_http_request_duration_seconds", "HTTP request duration by route template, method and status",
            ["route", "method", "status"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.appends = Counter("roomlog_appends", "Appends committed (one per append request)", registry=reg)
        self.append_batch_size = Histogram(
            "roomlog_append_batch_size", "Appends per group-commit transaction", buckets=_BATCH_BUCKETS, registry=reg)
        self.relay_lag_events = Gauge(
            "roomlog_relay_lag_events", "Committed events the relay has not published yet (sampled)",
            multiprocess_mode="livemax", registry=reg)
        self.relay_lag_seconds = Gauge(
            "roomlog_relay_lag_seconds", "Age of the oldest committed event the relay has not published (sampled)",
            multiprocess_mode="livemax", registry=reg)
        self.catch_up_lag_events = Gauge(
            "roomlog_catch_up_lag_events", "Committed events a catch-up projection has not applied yet (sampled)",
            ["projection"], multiprocess_mode="livemax", registry=reg)
        self.consumer_pending = Gauge(
            "roomlog_jetstream_consumer_pending_messages", "Messages a JetStream consumer has yet to deliver (sampled)",
            ["consumer"], multiprocess_mode="livemax", registry=reg)
        self.consumer_ack_pending = Gauge(
            "roomlog_jetstream_consumer_ack_pending_messages",
            "Messages a JetStream consumer delivered and awaits acks for (sampled)",
            ["consumer"], multiprocess_mode="livemax", registry=reg)
        self.consumer_redelivered = Gauge(
            "roomlog_jetstream_consumer_redelivered_messages",
            "Messages a JetStream consumer redelivered at least once, still unacked (sampled)",
            ["consumer"], multiprocess_mode="livemax", registry=reg)
        self.ws_connections = Gauge(
            "roomlog_websocket_connections", "Open WebSocket connections", multiprocess_mode="livesum", registry=reg)
        self.polls_waiting = Gauge(
            "roomlog_polls_waiting", "Long-polls (GET /poll) waiting for an event", multiprocess_mode="livesum",
            registry=reg)
        self.gc_pauses = Histogram(
            "roomlog_gc_pause_seconds", "Pauses of the garbage collector by generation (nothing else runs meanwhile)",
            ["generation"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.ws_resyncs = Counter(
            "roomlog_websocket_resyncs", "WebSocket clients told to resync (their queue filled up)", registry=reg)
        self.ws_slow_drops = Counter(
            "roomlog_websocket_slow_client_drops", "WebSocket clients dropped because they stopped reading",
            registry=reg)
        self.webhook_deliveries = Counter(
            "roomlog_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"], registry=reg)
        self.dead_letters_open = Gauge(
            "roomlog_dead_letters_open", "Dead letters neither retried nor discarded (sampled)",
            multiprocess_mode="livemax", registry=reg)
        self.rate_limited = Counter(
            "roomlog_rate_limit_rejections", "Requests refused with 429 by limit", ["limit"], registry=reg)
        self.db_pool_in_use = Gauge(
            "roomlog_db_pool_connections_in_use", "Pooled database connections acquired",
            multiprocess_mode="livesum", registry=reg)
        self.db_pool_waiting = Gauge(
            "roomlog_db_pool_waiting_acquires", "Tasks waiting for a pooled database connection",
            multiprocess_mode="livesum", registry=reg)
        self.gc = GcPauses(self.gc_pauses)

        # Label children are looked up once: `labels()` takes a lock and builds a tuple on every call.
        self._http: dict[Hashable, Histogram] = {}
        self.webhook_outcome = {o: self.webhook_deliveries.labels(outcome=o) for o in WEBHOOK_OUTCOMES}
        self.rate_limit_of = {k: self.rate_limited.labels(limit=k) for k in ("requests", "sends")}
        for child in (*self.webhook_outcome.values(), *self.rate_limit_of.values()):
            child.inc(0)  # present from the start, so rate() and alerts see a series

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one HTTP request's duration."""
        key = (route, method, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http_duration.labels(route=route, method=method, status=str(status))
        child.observe(seconds)

    def observe_batch(self, size: int) -> None:
        """Record one committed group-commit batch of `size` appends."""
        self.appends.inc(size)
        self.append_batch_size.observe(size)

    def render(self) -> bytes:
        """The Prometheus text exposition of every process's values (all workers in multiprocess mode)."""
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """Forget this process's live gauges (its workers' files stay for counters and histograms)."""
        if self._multiprocess:
            multiprocess.mark_process_dead(os.getpid())
