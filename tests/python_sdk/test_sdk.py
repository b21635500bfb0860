"""The Python SDK (clients/python) against the in-process server over real HTTP and WebSocket."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest
from roomlog_client import BadRequest, Conflict, NotFound, PermissionDenied, RoomlogClient
from starlette.applications import Starlette

from tests.conftest import REPO, Tenant, serving

SDK = REPO / "clients" / "python"
SERVER_PACKAGES = {"service", "schemas", "eventstore", "projections", "tests"}


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("roomlog_sdk_generate", SDK / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_committed_client_is_generated_from_the_current_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    generated = _generator().generate(document)
    committed = (SDK / "roomlog_client" / "_api.py").read_text()
    assert generated == committed, "regenerate: python clients/python/generate.py http://HOST/openapi.json"
    operations = {op["operationId"] for verbs in document["paths"].values() for op in verbs.values()}
    methods = {name for name in dir(RoomlogClient) if not name.startswith("_")}
    assert {_generator().method_name(o) for o in operations} <= methods


def test_the_sdk_imports_no_server_code() -> None:
    for source in (SDK / "roomlog_client").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not {n.split(".")[0] for n in names} & SERVER_PACKAGES, f"{source.name} imports {names}"


async def test_rest_calls_typed_errors_and_pagination(app: Starlette, tenant: Tenant) -> None:
    async for host in serving(app):
        async with RoomlogClient(f"http://{host}", api_key=tenant.api_key, user_id="ana") as ana, \
                RoomlogClient(f"http://{host}", api_key=tenant.api_key, user_id="eve") as eve:
            room = await ana.post_rooms({"type": "group", "members": ["bo"]})
            room_id = room["room_id"]

            # A retried send with the same client_msg_id is one message.
            first = await ana.send_message(room_id, "hello", client_msg_id="m-1")
            again = await ana.send_message(room_id, "hello", client_msg_id="m-1")
            assert again["message_id"] == first["message_id"] and again["seq"] == first["seq"]
            with pytest.raises(Conflict) as reused:
                await ana.send_message(room_id, "other text", client_msg_id="m-1")
            assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"

            # Typed errors carry the API's code and field.
            with pytest.raises(PermissionDenied) as denied:
                await eve.send_message(room_id, "let me in")
            assert denied.value.code == "NOT_A_MEMBER" and denied.value.status == 403
            with pytest.raises(NotFound) as missing:
                await ana.get_rooms_room_id("no-such-room")
            assert missing.value.code == "ROOM_NOT_FOUND"
            with pytest.raises(BadRequest) as bad:
                await ana.post_rooms_room_id_messages(room_id, {"content": ""})
            assert bad.value.code == "VALIDATION_ERROR" and bad.value.field == "content"

            # Pagination helpers walk every page in seq order.
            for n in range(60):
                await ana.send_message(room_id, f"m{n}")
            seqs = [m["seq"] async for m in ana.iter_messages(room_id, page_size=25)]
            assert seqs == list(range(first["seq"], first["seq"] + 61))
            events = [e["seq"] async for e in ana.iter_events(room_id, page_size=20)]
            assert events == list(range(1, events[-1] + 1)) and events[-1] == seqs[-1]

            # Path parameters are percent-encoded: a user id outside ASCII reaches the right route.
            member = "בוב"
            await ana.post_rooms_room_id_members(room_id, {"user_ids": [member]})
            assert (await ana.delete_rooms_room_id_members_user_id(room_id, member))["success"] is True


async def test_subscribe_yields_each_seq_once_in_order_and_resumes_from_a_store(
        app: Starlette, tenant: Tenant, tmp_path: Path) -> None:
    from roomlog_client import JsonFileSeqStore

    async for host in serving(app):
        async with RoomlogClient(f"http://{host}", api_key=tenant.api_key, user_id="ana") as ana:
            rooms = [(await ana.post_rooms({"type": "group", "members": []}))["room_id"] for _ in range(2)]
            for n in range(5):
                for room_id in rooms:
                    await ana.send_message(room_id, f"before {n}")
            store = JsonFileSeqStore(tmp_path / "seqs.json")
            states: list[str] = []
            seen: dict[str, list[int]] = {room_id: [] for room_id in rooms}
            subscription = ana.subscribe(rooms, store=store, on_state=states.append)

            async def live_sends(rooms: list[str]) -> None:
                for n in range(5):
                    for room_id in rooms:
                        await ana.send_message(room_id, f"live {n}")

            sender = None
            async with asyncio.timeout(20):
                async for event in subscription:
                    seen[event["room_id"]].append(event["seq"])
                    if sender is None:
                        sender = asyncio.create_task(live_sends(rooms))
                    if all(len(s) == 12 for s in seen.values()):  # room.created, member.joined, 10 messages
                        break
            assert sender is not None
            await sender
            await subscription.close()
            assert all(s == list(range(1, 13)) for s in seen.values()), seen
            assert "live" in states

            # Written while no one listened; a new subscription from the same store gets exactly those.
            for room_id in rooms:
                await ana.send_message(room_id, "while away")
            resumed: list[tuple[str, int]] = []
            async with asyncio.timeout(20), ana.subscribe([], store=store) as again:
                async for event in again:
                    resumed.append((event["room_id"], event["seq"]))
                    if len(resumed) == 2:
                        break
            assert sorted(resumed) == sorted((room_id, 13) for room_id in rooms)
            assert store.load() == {room_id: 13 for room_id in rooms}
