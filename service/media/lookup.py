"""The confirmed uploads a send attaches, looked up for all sends waiting at once.

Each send with attachments needs its media's facts before it can decide. Concurrent sends share one query
(one primary-key probe per media id) instead of taking a pooled connection each: while lookups are in
flight, the next sends' ids gather for the one after them, as the appender's group commit does for writes.
Up to `parallel` lookups run at once, so a send that arrives while one is running starts the next at once
instead of waiting that query out first.

A confirmed upload's facts never change, so the ones found (and those confirmed here) are remembered, a
bounded number, and a send naming only remembered media needs no query at all. Whether each medium is still a
confirmed upload of the sender's when the message is written is not taken from memory: the append checks it
under the room's lock (the `PostsNaming` guard), so a medium removed since is refused either way.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Sequence

import asyncpg

from projections.media import attachment_of, confirmed_media
from schemas.events import Attachment

_Key = tuple[str, str]  # (tenant_id, media_id)


class _Waiter:
    __slots__ = ("future", "keys")

    def __init__(self, keys: list[_Key], future: asyncio.Future[dict[_Key, tuple[str, Attachment]]]) -> None:
        self.keys, self.future = keys, future


class ConfirmedMedia:
    """Looks up confirmed uploads for sends, one query for every send that waits at the same time."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 1000, parallel: int = 2,
                 remembered: int = 10_000) -> None:
        self._pool = pool
        # (tenant, media id) -> (uploader, facts) of confirmed uploads, least recently used first.
        self._known: OrderedDict[_Key, tuple[str, Attachment]] = OrderedDict()
        self._remembered = remembered
        self._max_batch = max_batch
        self._parallel = parallel
        self._waiting: deque[_Waiter] = deque()
        self._drains = 0  # counted in the drain itself: one that has seen the queue empty is done at once
        self._tasks: set[asyncio.Task[None]] = set()

    async def of(self, tenant_id: str, uploaded_by: str, media_ids: Sequence[str]) -> dict[str, Attachment]:
        """Those of `media_ids` that are confirmed uploads of `uploaded_by` in the tenant, by media id."""
        keys = [(tenant_id, m) for m in dict.fromkeys(media_ids)]
        known = self._recall(keys, uploaded_by)
        if known is not None:
            return known
        future: asyncio.Future[dict[_Key, tuple[str, Attachment]]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiter(keys, future))
        if self._drains < self._parallel:
            self._drains += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        found = await future
        return {media_id: attachment for (_, media_id), (uploader, attachment) in found.items()
                if uploader == uploaded_by}

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                try:
                    rows = await self._lookup([k for w in batch for k in w.keys])
                except Exception as exc:  # every waiter of the batch learns of it, then the next batch runs
                    for w in batch:
                        if not w.future.done():
                            w.future.set_exception(exc)
                    continue
                except BaseException:  # cancelled (the service stops): so are the sends that wait
                    for w in (*batch, *self._waiting):
                        w.future.cancel()
                    raise
                for w in batch:
                    if not w.future.done():
                        w.future.set_result({k: rows[k] for k in w.keys if k in rows})
        finally:
            self._drains -= 1

    def remember(self, row: asyncpg.Record) -> None:
        """Keep a confirmed upload's facts (a media row); rows of other statuses are ignored."""
        if row["status"] == "confirmed":
            self._keep((row["tenant_id"], row["media_id"]), (row["uploaded_by"], attachment_of(row)))

    def _recall(self, keys: list[_Key], uploaded_by: str) -> dict[str, Attachment] | None:
        """The facts of every key when all are remembered uploads of `uploaded_by`; None sends it to the database."""
        found = {}
        for key in keys:
            known = self._known.get(key)
            if known is None or known[0] != uploaded_by:
                return None
            self._known.move_to_end(key)
            found[key[1]] = known[1]
        return found

    def _keep(self, key: _Key, value: tuple[str, Attachment]) -> None:
        self._known[key] = value
        self._known.move_to_end(key)
        while len(self._known) > self._remembered:
            self._known.popitem(last=False)

    def _take(self) -> list[_Waiter]:
        batch: list[_Waiter] = []
        size = 0
        while self._waiting and (not batch or size + len(self._waiting[0].keys) <= self._max_batch):
            waiter = self._waiting.popleft()
            batch.append(waiter)
            size += len(waiter.keys)
        return batch

    async def _lookup(self, keys: list[_Key]) -> dict[_Key, tuple[str, Attachment]]:
        unique = list(dict.fromkeys(keys))
        rows = await confirmed_media(self._pool, [t for t, _ in unique], [m for _, m in unique])
        found = {(r["tenant_id"], r["media_id"]): (r["uploaded_by"], attachment_of(r)) for r in rows}
        for key, value in found.items():
            self._keep(key, value)
        return found
