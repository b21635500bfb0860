"""service/identity/auth.py TtlCache: concurrent look-ups of a stale key share one load; forget() wins over a load
already running."""

from __future__ import annotations

import asyncio

import pytest

from service.identity.auth import TtlCache


class _Loads:
    """A loader that counts its calls and answers only when released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self, key: str) -> str:
        self.calls += 1
        answer = f"{key}-{self.calls}"
        await self.release.wait()
        if self.fail:
            raise LookupError(answer)
        return answer


async def test_concurrent_look_ups_of_a_missing_key_share_one_load() -> None:
    loads = _Loads()
    cache: TtlCache[str, str] = TtlCache(loads)
    waiting = [asyncio.ensure_future(cache.get("alice")) for _ in range(20)]
    await asyncio.sleep(0)
    loads.release.set()
    assert await asyncio.gather(*waiting) == ["alice-1"] * 20
    assert await cache.get("alice") == "alice-1" and loads.calls == 1


async def test_a_failed_load_fails_every_waiter_and_the_next_look_up_loads_again() -> None:
    loads = _Loads()
    loads.fail = True
    cache: TtlCache[str, str] = TtlCache(loads)
    waiting = [asyncio.ensure_future(cache.get("bob")) for _ in range(3)]
    await asyncio.sleep(0)
    loads.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3
    loads.fail = False
    assert await cache.get("bob") == "bob-2"


async def test_a_cancelled_loading_look_up_leaves_its_waiters_to_load_themselves() -> None:
    loads = _Loads()
    cache: TtlCache[str, str] = TtlCache(loads)
    leader = asyncio.ensure_future(cache.get("carol"))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cache.get("carol"))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    loads.release.set()
    assert await waiter == "carol-2"


async def test_forget_during_a_load_keeps_that_answer_out_of_the_cache() -> None:
    loads = _Loads()
    cache: TtlCache[str, str] = TtlCache(loads)
    first = asyncio.ensure_future(cache.get("dave"))
    await asyncio.sleep(0)
    cache.forget("dave")  # e.g. the role changed while the old one was being read
    loads.release.set()
    assert await first == "dave-1"
    assert await cache.get("dave") == "dave-2"
