"""GET /asyncapi.json: the WebSocket protocol, every frame of schemas/realtime.py, every reference resolving."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from schemas import realtime
from service.realtime.gateway import CLOSE_RESYNC, CLOSE_SHUTDOWN


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    """The AsyncAPI document as the app serves it, asked for without credentials."""
    response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def frames_of_realtime() -> tuple[set[str], set[str]]:
    """(client, server) frame Struct names of schemas/realtime.py: tagged ones, and ones with a `type` (no bases)."""
    structs = [c for name, c in inspect.getmembers(realtime, inspect.isclass)
               if issubclass(c, msgspec.Struct) and c.__module__ == realtime.__name__ and not name.startswith("_")]
    client = {c.__name__ for c in structs if isinstance(c.__struct_config__.tag, str)}
    server = {c.__name__ for c in structs if c.__name__ not in client
              and "type" in {f.name for f in msgspec.structs.fields(c)}}
    return client, server


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The object a local `$ref` points at (KeyError when it points nowhere)."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` within a part of the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == "$ref" else refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_it_is_an_asyncapi_3_document_of_the_ws_channel_with_its_token(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    [channel] = document["channels"].values()
    assert channel["address"] == "/ws"
    assert channel["bindings"]["ws"]["query"]["required"] == ["token"]


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    assert [ref for ref in refs(document) if not _resolves(document, ref)] == []


async def test_every_message_has_a_payload_schema(document: dict[str, Any]) -> None:
    for name, message in document["components"]["messages"].items():
        assert message["payload"]["$ref"].startswith("#/components/schemas/"), name
        assert resolve(document, message["payload"]["$ref"])["type"] == "object", name


async def test_every_frame_of_realtime_appears_in_its_direction(document: dict[str, Any]) -> None:
    client, server = frames_of_realtime()
    operations = {op["action"]: {ref["$ref"].rsplit("/", 1)[1] for ref in op["messages"]}
                  for op in document["operations"].values()}
    assert client <= operations["receive"]
    assert server <= operations["send"]
    assert "NotificationFrame" in operations["send"]


async def test_a_frames_name_is_its_type(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert (messages["Sync"]["name"], messages["Sent"]["name"], messages["Shutdown"]["name"]) == (
        "sync", "send.ok", "server.shutdown"
    )


async def test_the_close_codes_are_stated(document: dict[str, Any]) -> None:
    [channel] = document["channels"].values()
    assert {str(CLOSE_RESYNC), str(CLOSE_SHUTDOWN)} <= set(channel["x-close-codes"])


def _resolves(document: dict[str, Any], ref: str) -> bool:
    try:
        resolve(document, ref)
    except KeyError:
        return False
    return True
