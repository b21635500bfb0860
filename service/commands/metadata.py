"""Running a command: metadata for its events, and optimistic-concurrency retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from schemas.errors import WrongExpectedSeq
from schemas.events import EventMetadata
from service.identity.auth import Principal
from service.observability.request_id import current_request_id

T = TypeVar("T")

# A command that read a stream, decided, and lost the race to another append re-reads and decides again.
CONFLICT_RETRIES = 5


def metadata_for(principal: Principal, correlation_id: str | None = None) -> EventMetadata:
    """Event metadata naming the tenant, the acting user and the correlation id (default: the request's id)."""
    return EventMetadata(tenant_id=principal.tenant_id, actor=principal.user_id,
                         correlation_id=correlation_id or current_request_id.get())


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], *, attempts: int = CONFLICT_RETRIES) -> T:
    """Run read-decide-append again while another writer moved the stream in between."""
    for remaining in range(attempts - 1, -1, -1):
        try:
            return await attempt()
        except WrongExpectedSeq:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")
