"""Keeping the embedded servers running: a thread that restarts a dead PostgreSQL or nats-server, with backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("roomlog.supervisor")

CHECK_SECONDS = 0.5
FIRST_RETRY_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
# A server that stayed up this long after a restart is healthy again: its next death restarts it at once.
STABLE_SECONDS = 60.0


class Supervised(Protocol):
    """A child server the supervisor can check and restart."""

    name: str

    def alive(self) -> bool:
        ...

    def restart(self) -> None:
        ...


@dataclass
class _Backoff:
    delay: float = 0.0
    next_try: float = 0.0
    restarted_at: float = 0.0
    attempts: int = 0
    down_since: float | None = None


class Supervisor:
    """Checks the servers twice a second from a thread and restarts any that died, logging each restart."""

    def __init__(self, servers: Sequence[Supervised], *, check_seconds: float = CHECK_SECONDS) -> None:
        self._servers = list(servers)
        self._check_seconds = check_seconds
        self._backoff = {id(s): _Backoff() for s in self._servers}
        self._stopping = threading.Event()
        # Not a daemon: stop() joins it, so a restart in progress finishes before the servers are stopped.
        self._thread = threading.Thread(target=self._run, name="embedded-supervisor")

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (waits for a restart in progress), so the servers can be stopped on purpose."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._check_seconds):
            for server in self._servers:
                if self._stopping.is_set():
                    return
                self._check(server, self._backoff[id(server)])

    def _check(self, server: Supervised, backoff: _Backoff) -> None:
        now = time.monotonic()
        if server.alive():
            if backoff.delay and now - backoff.restarted_at > STABLE_SECONDS:
                backoff.delay = 0.0
            return
        if backoff.down_since is None:
            backoff.down_since = now
            log.warning("embedded server died; restarting", server=server.name, retry_in=round(backoff.delay, 2))
            backoff.next_try = now + backoff.delay
        if now < backoff.next_try:
            return
        backoff.attempts += 1
        try:
            server.restart()
        except Exception as exc:  # any failure to start is retried; the reason goes to the log
            self._failed(server, backoff, exc)
            return
        log.info("embedded server restarted", server=server.name, attempts=backoff.attempts,
                 down_seconds=round(time.monotonic() - backoff.down_since, 2))
        backoff.restarted_at = time.monotonic()
        backoff.delay = min(max(backoff.delay * 2, FIRST_RETRY_SECONDS), MAX_BACKOFF_SECONDS)
        backoff.down_since = None
        backoff.attempts = 0

    def _failed(self, server: Supervised, backoff: _Backoff, exc: Exception) -> None:
        backoff.delay = min(max(backoff.delay * 2, FIRST_RETRY_SECONDS), MAX_BACKOFF_SECONDS)
        backoff.next_try = time.monotonic() + backoff.delay
        log.warning("embedded server restart failed; retrying", server=server.name, attempt=backoff.attempts,
                    retry_in=round(backoff.delay, 2), error=str(exc) or type(exc).__name__)
