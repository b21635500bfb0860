"""A WebSocket connection's work queue: bounded, first in first out, one consumer task.

Every delivered event passes through one of these, ten thousand times a second in bench/fanout.py;
asyncio.Queue's bookkeeping (task counting, a deque of getter and putter futures, loop checks)
cost more there than the delivery itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Items for one consumer task; `put` may be awaited by one producer at a time, `put_nowait` by any."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._item_waiter: asyncio.Future[None] | None = None
        self._space_waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        """Add an item; raises asyncio.QueueFull when the mailbox is full."""
        if len(self._items) >= self._maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        _wake(self._item_waiter)

    async def put(self, item: T) -> None:
        """Add an item, waiting while the mailbox is full."""
        while len(self._items) >= self._maxsize:
            self._space_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._space_waiter
            finally:
                self._space_waiter = None
        self.put_nowait(item)

    def clear(self) -> None:
        """Drop every item."""
        self._items.clear()
        _wake(self._space_waiter)

    def get_nowait(self) -> T:
        """Take the oldest item; raises asyncio.QueueEmpty when there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        _wake(self._space_waiter)
        return item

    async def get(self) -> T:
        """Take the oldest item, waiting for one."""
        while not self._items:
            self._item_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._item_waiter
            finally:
                self._item_waiter = None
        return self.get_nowait()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
