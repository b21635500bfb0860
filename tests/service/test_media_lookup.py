"""service/media/lookup.py: concurrent sends share their attachment lookups, and each learns only its own."""

from __future__ import annotations

import asyncio

from schemas.events import Attachment
from service.media.lookup import ConfirmedMedia
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.projections.test_message_attachments import confirmed_media


class CountingLookups(ConfirmedMedia):
    """The real lookup, counting its queries."""

    queries = 0

    async def _lookup(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Attachment]]:
        self.queries += 1
        return await super()._lookup(keys)


async def test_concurrent_lookups_share_queries_and_answer_only_the_uploaders_confirmed_media(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant
) -> None:
    users = [f"u{i}" for i in range(20)]
    own = {u: await confirmed_media(runtime, tenant, u) for u in users}
    foreign = await confirmed_media(runtime, other_tenant, "u0")
    lookups = CountingLookups(runtime.pool)
    answers = await asyncio.gather(*(
        lookups.of(tenant.tenant_id, u, [own[u], own[users[(i + 1) % len(users)]], foreign, "med_missing"])
        for i, u in enumerate(users)))
    assert [sorted(a) for a in answers] == [[own[u]] for u in users]
    assert all(a[own[u]].sha256 == "ab" * 32 and a[own[u]].width == 2 for a, u in zip(answers, users, strict=True))
    assert lookups.queries <= 2  # the first alone, the other 19 gathered while it ran


class HeldFirstLookup(ConfirmedMedia):
    """The real lookup, whose first query is held until released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.release = asyncio.Event()
        self._calls = 0

    async def _lookup(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Attachment]]:
        self._calls += 1
        if self._calls == 1:
            await self.release.wait()
        return await super()._lookup(keys)


async def test_a_lookup_arriving_while_one_runs_is_answered_without_waiting_for_it(
    runtime: Runtime, tenant: Tenant
) -> None:
    first, second = await confirmed_media(runtime, tenant, "u1"), await confirmed_media(runtime, tenant, "u2")
    lookups = HeldFirstLookup(runtime.pool, parallel=2)
    held = asyncio.create_task(lookups.of(tenant.tenant_id, "u1", [first]))
    await asyncio.sleep(0)  # the first lookup's query is under way (and held)
    assert sorted(await asyncio.wait_for(lookups.of(tenant.tenant_id, "u2", [second]), 10)) == [second]
    assert not held.done()
    lookups.release.set()
    assert sorted(await held) == [first]
