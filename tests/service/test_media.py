"""Media uploads against a real SeaweedFS: presigned PUT, confirm, metadata and downloads; every refusal a 4xx."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import uuid
import zlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from eventstore.transfer import export_tenant
from projections.replay import ALL_PROJECTIONS, replay
from projections.streams import media_stream
from schemas.errors import MediaUploadExpired
from schemas.media import ConfirmUpload
from service.commands.erasure import erase
from service.commands.media import confirm_upload
from service.domain.media import media_key, upload_key
from service.identity.auth import Principal
from service.media.cleanup import MediaCleanup
from service.media.store import ObjectStore
from service.runtime import Runtime
from tests.conftest import Tenant
from tests.service.test_erasure import jetstream_payloads, published, tables_holding

pytestmark = pytest.mark.usefixtures("media_store")


def png(width: int, height: int) -> bytes:
    """A real PNG of a colour gradient."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of side x side pixels: a few kilobytes that decode to side²/8 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = bytes(1 + side // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def ask_upload(client: httpx.AsyncClient, headers: dict[str, str], *, size: int,
                     content_type: str = "image/png", filename: str = "pic.png") -> dict[str, Any]:
    response = await client.post("/media/upload-url", headers=headers,
                                 json={"filename": filename, "content_type": content_type, "size": size})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    """A real HTTP PUT straight to the object store."""
    async with httpx.AsyncClient() as store:
        return await store.put(url, content=data, headers=headers)


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes, *,
                 content_type: str = "image/png", filename: str = "pic.png") -> str:
    """Ask for an upload URL and PUT `data` to it; the media id."""
    ticket = await ask_upload(client, headers, size=len(data), content_type=content_type, filename=filename)
    answer = await put(ticket["upload_url"], data, ticket["headers"])
    assert answer.status_code == 200, answer.text
    return str(ticket["media_id"])


async def confirm(client: httpx.AsyncClient, headers: dict[str, str], media_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/media/{media_id}/confirm", headers=headers, json=body)


async def objects_of(store: ObjectStore, tenant: Tenant, media_id: str) -> list[str]:
    """Every object the store holds for one upload (the upload key and anything under its media prefix)."""
    keys = []
    for prefix in (upload_key(tenant.tenant_id, media_id), f"media/{tenant.tenant_id}/{media_id}/"):
        listing = await store._client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
        keys += [o["Key"] for o in listing.get("Contents", [])]
    return keys


async def test_an_image_uploads_end_to_end_with_its_size_a_thumbnail_and_the_same_bytes_back(
    client: httpx.AsyncClient, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    data = png(800, 600)
    media_id = await upload(client, alice, data)
    confirmed = await confirm(client, alice, media_id, sha256=hashlib.sha256(data).hexdigest())
    assert confirmed.status_code == 200, confirmed.text
    got = (await client.get(f"/media/{media_id}", headers=alice)).json()
    assert (got["width"], got["height"], got["size"], got["content_type"]) == (800, 600, len(data), "image/png")
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient() as cdn:
        original = await cdn.get(got["cdn_url"])
        thumbnail = await cdn.get(got["thumbnail_url"])
    assert hashlib.sha256(original.content).hexdigest() == got["sha256"]
    assert original.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (320, 240)
    # Only the verified copy and its thumbnail are left: the upload key is gone, so a later PUT changes nothing.
    assert await objects_of(media_store, tenant, media_id) == [
        media_key(tenant.tenant_id, media_id, got["sha256"]),
        media_key(tenant.tenant_id, media_id, got["sha256"]) + ".thumb",
    ]


async def test_a_pdf_is_served_as_an_attachment_without_image_fields(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    alice = tenant.as_user("alice")
    data = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    media_id = await upload(client, alice, data, content_type="application/pdf", filename="report 1.pdf")
    body = (await confirm(client, alice, media_id)).json()
    assert body["content_type"] == "application/pdf" and "width" not in body and "thumbnail_url" not in body
    async with httpx.AsyncClient() as cdn:
        got = await cdn.get(body["cdn_url"])
    assert got.content == data
    assert got.headers["content-disposition"].startswith("attachment;")


async def test_the_presigned_put_refuses_another_size_or_content_type(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    alice = tenant.as_user("alice")
    data = png(10, 10)
    ticket = await ask_upload(client, alice, size=len(data))
    assert (await put(ticket["upload_url"], data + b"x", ticket["headers"] | {"Content-Length": str(len(data) + 1)})
            ).status_code == 403
    assert (await put(ticket["upload_url"], data, ticket["headers"] | {"Content-Type": "text/html"})).status_code \
        == 403
    # Nothing arrived: confirm says so and the upload stays open for a correct PUT.
    early = await confirm(client, alice, ticket["media_id"])
    assert (early.status_code, early.json()["error"]["code"]) == (409, "MEDIA_NOT_UPLOADED")
    assert (await put(ticket["upload_url"], data, ticket["headers"])).status_code == 200
    assert (await confirm(client, alice, ticket["media_id"])).status_code == 200


async def test_an_executable_that_claims_to_be_a_png_is_refused_and_removed(
    client: httpx.AsyncClient, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(120)
    media_id = await upload(client, alice, elf)
    refused = await confirm(client, alice, media_id)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "MEDIA_TYPE_MISMATCH")
    assert await objects_of(media_store, tenant, media_id) == []
    assert (await client.get(f"/media/{media_id}", headers=alice)).status_code == 404
    again = await confirm(client, alice, media_id)  # the uploader learns it was rejected for good
    assert (again.status_code, again.json()["error"]["code"]) == (409, "MEDIA_NOT_PENDING")


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    client: httpx.AsyncClient, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    bomb = png_bomb(20_000)
    assert len(bomb) < 100_000  # 50 MB of pixels in a small file
    media_id = await upload(client, alice, bomb)
    refused = await confirm(client, alice, media_id)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "MEDIA_IMAGE_TOO_LARGE")
    assert await objects_of(media_store, tenant, media_id) == []


async def test_a_wrong_sha256_is_refused_and_removed(
    client: httpx.AsyncClient, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    media_id = await upload(client, alice, png(4, 4))
    refused = await confirm(client, alice, media_id, sha256="0" * 64)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "MEDIA_CHECKSUM_MISMATCH")
    assert await objects_of(media_store, tenant, media_id) == []


async def test_limits_refuse_types_not_allowed_and_files_too_large(client: httpx.AsyncClient, tenant: Tenant) -> None:
    alice = tenant.as_user("alice")
    for body, code in [
        ({"filename": "x.html", "content_type": "text/html", "size": 10}, "MEDIA_TYPE_NOT_ALLOWED"),
        ({"filename": "x.svg", "content_type": "image/svg+xml", "size": 10}, "MEDIA_TYPE_NOT_ALLOWED"),
        ({"filename": "x.png", "content_type": "image/png", "size": 25 * 1024 * 1024 + 1}, "MEDIA_TOO_LARGE"),
        ({"filename": "a/b.png", "content_type": "image/png", "size": 10}, "VALIDATION_ERROR"),
        ({"filename": "b.png", "content_type": "image/png", "size": 0}, "VALIDATION_ERROR"),
    ]:
        response = await client.post("/media/upload-url", headers=alice, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, code), body


async def test_an_expired_upload_url_is_refused_by_the_store(media_store: ObjectStore, tenant: Tenant) -> None:
    key = upload_key(tenant.tenant_id, "med_expired")
    url = await media_store.presign_put(key, content_type="image/png", size=3, expires_in=1)
    await asyncio.sleep(2.1)  # the store checks the URL against its own clock
    assert (await put(url, b"abc", {"Content-Type": "image/png"})).status_code == 403
    assert await media_store.size_of(key) is None


async def test_confirm_after_the_upload_expired_is_410_and_removes_the_object(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    media_id = await upload(client, alice, png(4, 4))
    later = runtime.wall_clock() + timedelta(seconds=runtime.settings.media_upload_url_seconds + 1)
    with pytest.raises(MediaUploadExpired):
        await confirm_upload(runtime, Principal(tenant.tenant_id, "alice", role="member"), media_id,
                             ConfirmUpload(), now=later)
    assert await objects_of(media_store, tenant, media_id) == []


async def test_only_the_uploader_reads_unattached_media_and_another_tenant_gets_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    alice = tenant.as_user("alice")
    media_id = await upload(client, alice, png(4, 4))
    assert (await confirm(client, alice, media_id)).status_code == 200
    made_up = await client.get("/media/med_00000000000000000000", headers=tenant.as_user("bob"))
    for headers in (tenant.as_user("bob"), other_tenant.as_user("alice"), other_tenant.as_user("admin")):
        response = await client.get(f"/media/{media_id}", headers=headers)
        assert (response.status_code, response.json()) == (404, made_up.json())
        assert (await confirm(client, headers, media_id)).status_code == 404


async def test_racing_confirms_record_one_confirmation(client: httpx.AsyncClient, tenant: Tenant) -> None:
    alice = tenant.as_user("alice")
    media_id = await upload(client, alice, png(64, 64))
    answers = await asyncio.gather(*(confirm(client, alice, media_id) for _ in range(3)))
    statuses = sorted(a.status_code for a in answers)
    # One wins; the others found it confirmed already or lost the append (409), or found no upload left to
    # read because the winner moved it away (409 MEDIA_NOT_UPLOADED).
    assert statuses[0] == 200 and statuses[1:] == [409, 409], [a.text for a in answers]
    assert (await client.get(f"/media/{media_id}", headers=alice)).json()["status"] == "confirmed"


# --- attachments on messages ---------------------------------------------------------------------------------


async def confirmed(client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **kind: str) -> str:
    media_id = await upload(client, headers, data, **kind)
    assert (await confirm(client, headers, media_id)).status_code == 200
    return media_id


async def send(client: httpx.AsyncClient, headers: dict[str, str], room_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/rooms/{room_id}/messages", headers=headers, json={"content": "look", **body})


async def test_a_message_carries_its_attachments_in_reads_events_and_search_and_members_may_read_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    alice, bob, carol = tenant.as_user("alice"), tenant.as_user("bob"), tenant.as_user("carol")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    picture = await confirmed(client, alice, png(40, 30))
    assert (await client.get(f"/media/{picture}", headers=bob)).status_code == 404  # not attached yet
    sent = await send(client, alice, room["room_id"], type="image", attachments=[picture], content="zebrafish")
    assert sent.status_code == 201, sent.text
    [message] = (await client.get(f"/rooms/{room['room_id']}/messages", headers=bob)).json()
    assert message["type"] == "image"
    assert [(a["media_id"], a["width"], a["height"], a["content_type"]) for a in message["attachments"]] == [
        (picture, 40, 30, "image/png")]
    event = (await client.get(f"/rooms/{room['room_id']}/events", headers=bob)).json()[-1]
    assert (event["data"]["message_type"], event["data"]["attachments"]) == ("image", message["attachments"])
    # A member of the room reads the media now; someone outside it still does not.
    assert (await client.get(f"/media/{picture}", headers=bob)).json()["cdn_url"]
    assert (await client.get(f"/media/{picture}", headers=carol)).status_code == 404
    for _ in range(100):  # the search index follows the log a moment later
        hits = (await client.get("/search/messages", headers=bob, params={"q": "zebrafish"})).json()["data"]
        if hits:
            break
        await asyncio.sleep(0.05)
    assert [h["attachments"] for h in hits] == [message["attachments"]]


async def test_deleting_the_message_hides_its_attachments_from_the_room(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    alice, bob = tenant.as_user("alice"), tenant.as_user("bob")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    doc = await confirmed(client, alice, b"%PDF-1.4\n%%EOF\n", content_type="application/pdf", filename="a.pdf")
    sent = (await send(client, alice, room["room_id"], type="file", attachments=[doc])).json()
    assert (await client.get(f"/media/{doc}", headers=bob)).status_code == 200
    assert (await client.delete(f"/rooms/{room['room_id']}/messages/{sent['message_id']}", headers=alice)
            ).status_code == 200
    [message] = (await client.get(f"/rooms/{room['room_id']}/messages", headers=bob)).json()
    assert message["attachments"] == []
    sent_event = [e for e in (await client.get(f"/rooms/{room['room_id']}/events", headers=bob)).json()
                  if e["type"] == "message.sent"][-1]
    assert sent_event["data"].get("attachments", []) == []
    assert (await client.get(f"/media/{doc}", headers=bob)).status_code == 404
    assert (await client.get(f"/media/{doc}", headers=alice)).status_code == 200  # the uploader still may


async def test_only_the_senders_confirmed_media_of_a_fitting_type_may_be_attached(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    alice, bob = tenant.as_user("alice"), tenant.as_user("bob")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob", "admin"]})).json()
    rid = room["room_id"]
    mine = await confirmed(client, alice, png(4, 4))
    pending = await upload(client, alice, png(4, 4))
    foreign = await confirmed(client, other_tenant.as_user("alice"), png(4, 4))
    doc = await confirmed(client, alice, b"%PDF-1.4\n%%EOF\n", content_type="application/pdf", filename="a.pdf")
    for headers, body, status, code in [
        (bob, {"attachments": [mine]}, 400, "VALIDATION_ERROR"),  # another user's upload
        (alice, {"attachments": [pending]}, 400, "VALIDATION_ERROR"),  # not confirmed
        (alice, {"attachments": [foreign]}, 400, "VALIDATION_ERROR"),  # another tenant's
        (alice, {"attachments": [mine, mine]}, 400, "VALIDATION_ERROR"),
        (alice, {"attachments": [mine] * 11}, 400, "VALIDATION_ERROR"),
        (alice, {"type": "image", "attachments": [doc]}, 400, "VALIDATION_ERROR"),
        (alice, {"type": "voice"}, 400, "VALIDATION_ERROR"),
        (alice, {"type": "system"}, 403, "FORBIDDEN"),  # alice is a member of the tenant, not its admin
    ]:
        response = await send(client, headers, rid, **body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert (await send(client, tenant.as_user("admin"), rid, type="system")).status_code == 201


async def test_an_edit_cannot_swap_attachments(client: httpx.AsyncClient, tenant: Tenant) -> None:
    alice = tenant.as_user("alice")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    first, other = await confirmed(client, alice, png(4, 4)), await confirmed(client, alice, png(5, 5))
    sent = (await send(client, alice, room["room_id"], attachments=[first])).json()
    edit = await client.patch(f"/rooms/{room['room_id']}/messages/{sent['message_id']}", headers=alice,
                              json={"content": "changed", "attachments": [other]})
    assert (edit.status_code, edit.json()["error"]["code"]) == (400, "VALIDATION_ERROR")
    message = (await client.get(f"/rooms/{room['room_id']}/messages/{sent['message_id']}", headers=alice)).json()
    assert [a["media_id"] for a in message["attachments"]] == [first]


# --- expiry of unconfirmed uploads ---------------------------------------------------------------------------


async def test_expiry_removes_unconfirmed_uploads_once_and_leaves_the_rest(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    forgotten = await upload(client, alice, png(4, 4))
    kept = await confirmed(client, alice, png(5, 5))
    expiry = MediaCleanup(runtime.pool, runtime.appender, media_store, clock=runtime.wall_clock)
    later = runtime.wall_clock() + timedelta(seconds=runtime.settings.media_upload_url_seconds + 1)
    # A run that crashed after removing the object but before recording it: the next run records it once.
    await media_store.delete(upload_key(tenant.tenant_id, forgotten))
    first = await expiry.run_once(now=later)
    assert first >= 1
    assert await objects_of(media_store, tenant, forgotten) == []
    assert (await client.get(f"/media/{forgotten}", headers=alice)).status_code == 404
    assert await expiry.run_once(now=later) == 0
    stream = await runtime.pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                                      media_stream(tenant.tenant_id, forgotten))
    assert [r["type"] for r in stream] == ["media.upload_requested", "media.rejected"]
    assert (await client.get(f"/media/{kept}", headers=alice)).json()["status"] == "confirmed"
    late = await confirm(client, alice, forgotten)
    assert (late.status_code, late.json()["error"]["code"]) == (409, "MEDIA_NOT_PENDING")


async def test_deleting_its_last_message_removes_the_media_objects_once_even_after_a_crash(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    room = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()
    rid = room["room_id"]
    picture = await confirmed(client, alice, png(30, 30))
    first = (await send(client, alice, rid, attachments=[picture])).json()
    second = (await send(client, alice, rid, attachments=[picture])).json()
    cleanup = MediaCleanup(runtime.pool, runtime.appender, media_store, clock=runtime.wall_clock)
    await client.delete(f"/rooms/{rid}/messages/{first['message_id']}", headers=alice)
    await cleanup.remove_detached()
    assert len(await objects_of(media_store, tenant, picture)) == 2  # still attached to the second message
    await client.delete(f"/rooms/{rid}/messages/{second['message_id']}", headers=alice)
    # A run that crashed after removing the original but before recording it: the next one finishes, once.
    sha = (await client.get(f"/media/{picture}", headers=alice)).json()["sha256"]
    await media_store.delete(media_key(tenant.tenant_id, picture, sha))
    assert await cleanup.remove_detached() >= 1
    assert await objects_of(media_store, tenant, picture) == []
    assert await cleanup.remove_detached() == 0
    stream = await runtime.pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                                      media_stream(tenant.tenant_id, picture))
    assert [r["type"] for r in stream] == ["media.upload_requested", "media.confirmed", "media.removed"]
    assert (await client.get(f"/media/{picture}", headers=alice)).status_code == 404
    attach_again = await send(client, alice, rid, attachments=[picture])
    assert attach_again.status_code == 400


async def test_deleting_the_room_for_everyone_removes_its_media_objects_once(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice = tenant.as_user("alice")
    rid = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()["room_id"]
    pictures = [await confirmed(client, alice, png(20 + n, 20)) for n in range(2)]
    for picture in pictures:
        assert (await send(client, alice, rid, attachments=[picture])).status_code == 201
    elsewhere = (await client.post("/rooms", headers=alice, json={"type": "group", "members": []})).json()["room_id"]
    kept = await confirmed(client, alice, png(9, 9))
    assert (await send(client, alice, elsewhere, attachments=[kept])).status_code == 201
    assert (await client.delete(f"/rooms/{rid}", params={"scope": "for_everyone"}, headers=alice)).status_code == 200
    cleanup = MediaCleanup(runtime.pool, runtime.appender, media_store, clock=runtime.wall_clock)
    while await cleanup.remove_detached():
        pass
    for picture in pictures:
        assert await objects_of(media_store, tenant, picture) == []
        stream = await runtime.pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                                          media_stream(tenant.tenant_id, picture))
        assert [r["type"] for r in stream] == ["media.upload_requested", "media.confirmed", "media.removed"]
    assert len(await objects_of(media_store, tenant, kept)) == 2  # the other room's attachment and thumbnail
    assert (await client.get(f"/media/{kept}", headers=alice)).json()["status"] == "confirmed"


async def test_erasing_the_uploader_blanks_file_names_everywhere_and_removes_the_objects_once(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, media_store: ObjectStore
) -> None:
    alice, bob = tenant.as_user("alice"), tenant.as_user("bob")
    marker = f"zq{uuid.uuid4().hex[:12]}"
    rid = (await client.post("/rooms", headers=alice, json={"type": "group", "members": ["bob"]})).json()["room_id"]
    attached = await confirmed(client, bob, png(12, 12), filename=f"{marker}-holiday.png")
    unattached = await confirmed(client, bob, png(13, 13), filename=f"{marker}-draft.png")
    kept = await confirmed(client, alice, png(14, 14), filename="alice-keeps.png")
    assert (await send(client, bob, rid, attachments=[attached])).status_code == 201
    assert (await send(client, alice, rid, attachments=[kept])).status_code == 201
    assert runtime.nats.client is not None
    js = runtime.nats.client.jetstream()
    await published(js, tenant.tenant_id, marker.encode())

    report = await erase(runtime.pool, js, tenant.tenant_id, user_id="bob", erased_by="admin")

    assert report.events == 3  # the send and both uploads
    assert await tables_holding(runtime.pool, marker) == []
    assert not [p for p in await jetstream_payloads(js, tenant.tenant_id) if marker.encode() in p]
    export = b"".join([chunk async for chunk in export_tenant(runtime.pool, tenant.tenant_id)])
    assert marker.encode() not in export and b"alice-keeps.png" in export
    [bobs, alices] = (await client.get(f"/rooms/{rid}/messages", headers=alice)).json()
    assert [a["filename"] for a in bobs["attachments"]] == [""]
    assert [a["filename"] for a in alices["attachments"]] == ["alice-keeps.png"]
    # The bytes: the cleanup removes the erased uploads' objects (attached or not) once, and keeps alice's.
    cleanup = MediaCleanup(runtime.pool, runtime.appender, media_store, clock=runtime.wall_clock)
    while await cleanup.remove_detached():
        pass
    for media_id in (attached, unattached):
        assert await objects_of(media_store, tenant, media_id) == []
        stream = await runtime.pool.fetch("SELECT type, data->>'reason' AS reason FROM events WHERE stream_id = $1"
                                          " ORDER BY seq", media_stream(tenant.tenant_id, media_id))
        assert [(r["type"], r["reason"]) for r in stream][-1] == ("media.removed", "its uploader's content was erased")
        assert [r["type"] for r in stream] == ["media.upload_requested", "media.confirmed", "media.removed"]
    assert len(await objects_of(media_store, tenant, kept)) == 2
    differences = (await replay(runtime.pool, ALL_PROJECTIONS, verify=True, swap=False)).differences
    assert set(differences.values()) == {0}, differences
