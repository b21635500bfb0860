"""GET /openapi.json: links between operations, each resolving to a real operation and real parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.web.endpoints import Endpoint, Link, openapi
from service.web.request import JSON

# (from, to) by operationId: the chains a client (or a stateful fuzzer) follows from what it created.
CHAINS = [
    ("post_rooms", "get_rooms_room_id"),
    ("post_rooms", "post_rooms_room_id_messages"),
    ("post_rooms", "get_rooms_room_id_messages"),
    ("post_rooms", "get_rooms_room_id_members"),
    ("post_rooms", "post_rooms_room_id_members"),
    ("post_rooms", "get_rooms_room_id_events"),
    ("post_rooms_room_id_messages", "get_rooms_room_id_messages_message_id"),
    ("post_rooms_room_id_messages", "patch_rooms_room_id_messages_message_id"),
    ("post_rooms_room_id_messages", "delete_rooms_room_id_messages_message_id"),
    ("post_rooms_room_id_messages", "post_rooms_room_id_messages_message_id_reactions"),
    ("post_rooms_room_id_messages", "get_rooms_room_id_messages_message_id_reactions"),
    ("post_webhooks", "delete_webhooks_webhook_id"),
    ("post_api-keys", "delete_api-keys_key_id"),
]


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    """The API description as the app serves it."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation of the document by its operationId."""
    return {op["operationId"]: op for methods in document["paths"].values() for op in methods.values()}


def links(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(source operationId, success status, link) for every link of the document."""
    return [(op["operationId"], status, link) for op in operations(document).values()
            for status, response in op["responses"].items() for link in response.get("links", {}).values()]


def properties(schema: dict[str, Any], document: dict[str, Any]) -> set[str]:
    """The property names of an object schema, following its $ref."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema.get("properties", {}))


def resolves(expression: str, source: dict[str, Any], status: str, document: dict[str, Any]) -> bool:
    """Whether a runtime expression names a path parameter, request body field or response field of `source`."""
    kind, _, name = expression.partition("#/") if "#/" in expression else expression.rpartition(".")
    if kind == "$request.path":
        return name in {p["name"] for p in source["parameters"] if p["in"] == "path"}
    content = (source["requestBody"] if kind == "$request.body" else source["responses"][status]).get("content", {})
    return kind in ("$request.body", "$response.body") and name in properties(
        content.get("application/json", {}).get("schema", {}), document
    )


async def test_the_main_chains_are_linked(document: dict[str, Any]) -> None:
    linked = {(source, link["operationId"]) for source, _, link in links(document)}
    assert [chain for chain in CHAINS if chain not in linked] == []


async def test_every_link_names_a_real_operation_and_its_parameters(document: dict[str, Any]) -> None:
    by_id = operations(document)
    assert links(document)
    for source, status, link in links(document):
        target = by_id[link["operationId"]]
        path_params = {p["name"] for p in target["parameters"] if p["in"] == "path"}
        assert set(link["parameters"]) == path_params, (source, link)
        for expression in link["parameters"].values():
            assert resolves(expression, by_id[source], status, document), (source, link, expression)


async def test_links_hang_on_the_success_response(document: dict[str, Any]) -> None:
    assert all(status.startswith("2") for _, status, _ in links(document))


def test_a_link_to_an_undeclared_operation_is_refused_when_the_document_is_built() -> None:
    async def handler(request: Any) -> JSON:
        return JSON({})

    broken = Endpoint("POST", "/things", handler, "make a thing", links=(Link("GET", "/things/{thing_id}"),))
    with pytest.raises(LookupError):
        openapi([broken], title="t", version="1")
