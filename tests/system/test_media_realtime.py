"""Media through a real `roomlog serve` with the session's SeaweedFS: attachments sent over the WebSocket reach
the room's other members in their frames, and those members download the same bytes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from schemas.config import Settings
from tests.conftest import Tenant, make_tenant
from tests.system._servers import Api, WsClient, closing, start_serve, wait_live
from tests.system.conftest import Processes, Serve


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str, s3_settings: Settings
) -> AsyncIterator[Serve]:
    """One `roomlog serve` for the module, on the session's object store."""
    assert s3_settings.s3_url and s3_settings.s3_access_key and s3_settings.s3_secret_key
    with Processes(tmp_path_factory.mktemp("media")) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                  ROOMLOG_S3_URL=s3_settings.s3_url, ROOMLOG_S3_ACCESS_KEY=s3_settings.s3_access_key,
                                  ROOMLOG_S3_SECRET_KEY=s3_settings.s3_secret_key)
        await wait_live(serve, await make_tenant(database_url))
        yield serve


async def test_an_attachment_sent_over_the_websocket_reaches_members_with_its_metadata_and_bytes(
    server: Serve, tenant: Tenant
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 200, 30)).save(out, "PNG")
    data = out.getvalue()
    async with Api(server.base_url, tenant) as api:
        ticket = (await api.call("POST", "/media/upload-url", "alice",
                                 {"filename": "g.png", "content_type": "image/png", "size": len(data)})).json()
        async with httpx.AsyncClient() as store:
            assert (await store.put(ticket["upload_url"], content=data, headers=ticket["headers"])).status_code == 200
        assert (await api.call("POST", f"/media/{ticket['media_id']}/confirm", "alice", {})).status_code == 200
        room = await api.create_room("alice", ["bob"])
        alice = await WsClient.open(server.base_url, await api.token("alice"))
        bob = await WsClient.open(server.base_url, await api.token("bob"))
        async with closing(alice, bob):
            await bob.sync({room["room_id"]: room["last_seq"]})
            await alice.send({"type": "send", "room_id": room["room_id"], "content": "green", "client_msg_id": "c1",
                              "message_type": "image", "attachments": [ticket["media_id"]]})
            await alice.wait_for(lambda f: f.get("type") == "send.ok")
            frame = await bob.wait_for(lambda f: f.get("type") == "message.new")
        assert frame["data"]["message_type"] == "image"
        [attachment] = frame["data"]["attachments"]
        assert (attachment["media_id"], attachment["width"], attachment["height"]) == (ticket["media_id"], 64, 32)
        media = (await api.call("GET", f"/media/{ticket['media_id']}", "bob")).json()
        async with httpx.AsyncClient() as cdn:
            assert hashlib.sha256((await cdn.get(media["cdn_url"])).content).hexdigest() == attachment["sha256"]
