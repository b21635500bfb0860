"""service/media/lookup.py: concurrent sends share their attachment lookups, and each learns only its own."""

from __future__ import annotations

import asyncio

import httpx

from projections.streams import media_stream
from schemas.events import Attachment, EventMetadata, MediaRemoved
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


async def test_found_uploads_are_remembered_for_their_uploader_and_removed_ones_are_refused_by_the_append(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant
) -> None:
    mine, other = await confirmed_media(runtime, tenant, "alice"), await confirmed_media(runtime, tenant, "bob")
    lookups = CountingLookups(runtime.pool)
    assert sorted(await lookups.of(tenant.tenant_id, "alice", [mine, other])) == [mine]
    assert sorted(await lookups.of(tenant.tenant_id, "alice", [mine])) == [mine]
    assert sorted(await lookups.of(tenant.tenant_id, "bob", [mine])) == []  # remembered as alice's: asked again
    assert lookups.queries == 2
    # The service's own lookup remembers `mine` at the first send; once it is removed, the append refuses it.
    room = (await client.post("/rooms", headers=tenant.as_user("alice"), json={"type": "group", "members": ["bob"]}))
    rid = room.json()["room_id"]
    body = {"content": "a", "type": "image", "attachments": [mine]}
    assert (await client.post(f"/rooms/{rid}/messages", headers=tenant.as_user("alice"), json=body)).status_code == 201
    await runtime.appender.append(
        media_stream(tenant.tenant_id, mine), [MediaRemoved(media_id=mine, reason="test")],
        tenant_id=tenant.tenant_id, metadata=EventMetadata(tenant_id=tenant.tenant_id, actor="system"))
    refused = await client.post(f"/rooms/{rid}/messages", headers=tenant.as_user("alice"), json=body)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error["field"]) == (400, "VALIDATION_ERROR", "attachments")
    assert mine in error["message"]


async def test_a_send_with_attachments_keeps_the_room_rules_of_one_without(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant
) -> None:
    alice, bob, carol = (tenant.as_user(u) for u in ("alice", "bob", "carol"))
    media = {u: await confirmed_media(runtime, tenant, u) for u in ("bob", "carol")}
    announcements = (await client.post("/rooms", headers=alice, json={
        "type": "group", "members": ["bob"], "settings": {"who_can_post": "admins"}})).json()["room_id"]
    for headers, user, code in ((bob, "bob", "POSTING_RESTRICTED"), (carol, "carol", "NOT_A_MEMBER")):
        body = {"content": "a", "type": "image", "attachments": [media[user]]}
        refused = await client.post(f"/rooms/{announcements}/messages", headers=headers, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, code)
    assert (await client.get(f"/rooms/{announcements}/messages", headers=alice)).json() == []
