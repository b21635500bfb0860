"""projections/message_attachments.py: a medium's messages, for the media cleanup and the media read check."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx

from projections.media import attached_in_a_room_of, detached_media
from projections.replay import projection_by_name, replay
from projections.streams import media_stream
from schemas.events import EventMetadata, MediaConfirmed, MediaUploadRequested
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant


async def confirmed_media(runtime: Runtime, tenant: Tenant, uploader: str) -> str:
    """A confirmed upload of `uploader`, recorded in its stream (the bytes play no part here)."""
    meta = EventMetadata(tenant_id=tenant.tenant_id, actor=uploader)
    media_id = new_id("med")
    stream = media_stream(tenant.tenant_id, media_id)
    await runtime.appender.append(stream, [MediaUploadRequested(
        media_id=media_id, uploaded_by=uploader, filename="a.png", content_type="image/png", size=10,
        object_key=f"uploads/x/{media_id}", expires_at=datetime(2030, 1, 1, tzinfo=UTC))],
        tenant_id=tenant.tenant_id, metadata=meta, expected_seq=0, create_stream=True)
    await runtime.appender.append(stream, [MediaConfirmed(
        media_id=media_id, content_type="image/png", sha256="ab" * 32, size=10, width=2, height=5,
        thumbnail_key="t")], tenant_id=tenant.tenant_id, metadata=meta, expected_seq=1)
    return media_id


async def test_each_attachment_is_a_row_and_the_cleanup_sees_media_once_all_their_messages_are_deleted(
    client: httpx.AsyncClient, pool: asyncpg.Pool, runtime: Runtime, tenant: Tenant
) -> None:
    alice = tenant.as_user("alice")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    rid = room["room_id"]
    shared, single = await confirmed_media(runtime, tenant, "alice"), await confirmed_media(runtime, tenant, "alice")
    first = (await client.post(f"/rooms/{rid}/messages", headers=alice,
                               json={"content": "a", "type": "image", "attachments": [shared, single]})).json()
    second = (await client.post(f"/rooms/{rid}/messages", headers=alice,
                                json={"content": "b", "type": "image", "attachments": [shared]})).json()
    rows = await pool.fetch("SELECT media_id, message_id, room_id FROM message_attachments WHERE tenant_id = $1",
                            tenant.tenant_id)
    assert sorted(tuple(r) for r in rows) == sorted([(shared, first["message_id"], rid),
                                                     (single, first["message_id"], rid),
                                                     (shared, second["message_id"], rid)])
    assert await attached_in_a_room_of(pool, tenant.tenant_id, shared, "bob")

    async def detached() -> set[str]:
        return {r["media_id"] for r in await detached_media(pool, limit=1000) if r["tenant_id"] == tenant.tenant_id}

    assert await detached() == set()
    await client.delete(f"/rooms/{rid}/messages/{first['message_id']}", headers=alice)
    # `single` has no live message left; `shared` still has the second one.
    assert await detached() == {single}
    assert not await attached_in_a_room_of(pool, tenant.tenant_id, single, "bob")
    assert await attached_in_a_room_of(pool, tenant.tenant_id, shared, "bob")
    await client.delete(f"/rooms/{rid}/messages/{second['message_id']}", headers=alice)
    assert await detached() == {single, shared}
    assert not await attached_in_a_room_of(pool, tenant.tenant_id, shared, "bob")


async def test_replay_rebuilds_the_attachment_rows_identically(
    client: httpx.AsyncClient, pool: asyncpg.Pool, runtime: Runtime, tenant: Tenant
) -> None:
    alice = tenant.as_user("alice")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    for _ in range(3):
        media_id = await confirmed_media(runtime, tenant, "alice")
        sent = await client.post(f"/rooms/{room['room_id']}/messages", headers=alice,
                                 json={"content": "x", "type": "image", "attachments": [media_id]})
        assert sent.status_code == 201, sent.text
    await client.post(f"/rooms/{room['room_id']}/messages", headers=alice, json={"content": "plain"})
    report = await replay(pool, [projection_by_name("message_attachments")], verify=True)
    assert report.differences == {"message_attachments": 0}
    assert report.swapped
