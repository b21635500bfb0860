"""service/realtime/support_frames.py over real WebSockets: a customer and an agent through one support session.

queued (with queue-position frames) → assigned (the agent's frame, the customer's) → messages both ways on
the room's ordinary chat path → end → rating.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from schemas.config import Settings
from service.app import create_app
from service.runtime import Runtime
from tests.conftest import Tenant, serving

Frame = dict[str, Any]


@pytest.fixture(scope="module")
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The session app served by uvicorn on a real port (in this process, on the session runtime)."""
    async for url in serving(app):
        yield url


class Socket:
    """One user's WebSocket and every frame it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    async def wait_for(self, match: Callable[[Frame], bool], *, seconds: float = 10.0) -> Frame:
        """The first frame received so far or from now on that matches."""
        for frame in self.frames:
            if match(frame):
                return frame
        async with asyncio.timeout(seconds):
            while True:
                frame = json.loads(await self.ws.recv())
                self.frames.append(frame)
                if match(frame):
                    return frame


@contextlib.asynccontextmanager
async def online(client: httpx.AsyncClient, tenant: Tenant, user_id: str, live_url: str) -> AsyncIterator[Socket]:
    token = (await client.post("/tokens", headers=tenant.as_user(user_id))).json()["token"]
    async with connect(f"ws://{live_url}/ws?token={token}") as ws:
        socket = Socket(ws)
        await ws.send(json.dumps({"type": "ping"}))
        await socket.wait_for(lambda f: f["type"] == "pong")
        yield socket


def of(kind: str, **fields: object) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_customer_and_an_agent_over_websockets_from_queue_to_rating(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime, live_url: str
) -> None:
    admin = tenant.as_user("admin")
    for user_id, role in [("ag", "agent"), ("c1", "customer"), ("c2", "customer")]:
        await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                   headers=admin), 201)
    await ok(await client.put("/support/agents/ag", json={"max_sessions": 1}, headers=admin))
    async with online(client, tenant, "ag", live_url) as agent, online(client, tenant, "c1", live_url) as c1, \
            online(client, tenant, "c2", live_url) as c2:
        one = (await ok(await client.post("/support/sessions", json={"initial_message": "hi"},
                                          headers=tenant.as_user("c1")), 201))["session_id"]
        await c1.wait_for(of("support.queue", session_id=one, queue_position=1))
        await agent.wait_for(of("support.session.queued", session_id=one))
        two = (await ok(await client.post("/support/sessions", json={}, headers=tenant.as_user("c2")), 201))[
            "session_id"]
        await c2.wait_for(of("support.queue", session_id=two, queue_position=2))

        await ok(await client.put("/support/agents/ag/status", json={"status": "available"},
                                  headers=tenant.as_user("ag")))
        assigned = await agent.wait_for(of("support.session.assigned", session_id=one))
        await c1.wait_for(of("support.queue", session_id=one, status="active", agent_id="ag"))
        await c2.wait_for(of("support.queue", session_id=two, queue_position=1))

        room = assigned["room_id"]
        for socket in (agent, c1):
            await socket.ws.send(json.dumps({"type": "sync", "rooms": {room: 0}}))
            await socket.wait_for(of("synced"))
        await ok(await client.post(f"/support/sessions/{one}/messages", json={"content": "how can I help?"},
                                   headers=tenant.as_user("ag")), 201)
        await c1.wait_for(lambda f: f.get("data", {}).get("content") == "how can I help?")
        await ok(await client.post(f"/support/sessions/{one}/messages", json={"content": "my order"},
                                   headers=tenant.as_user("c1")), 201)
        await agent.wait_for(lambda f: f.get("data", {}).get("content") == "my order")

        await ok(await client.post(f"/support/sessions/{one}/end", json={}, headers=tenant.as_user("ag")))
        assert (await ok(await client.post(f"/support/sessions/{one}/rating", json={"score": 5},
                                           headers=tenant.as_user("c1"))))["rating"] == 5
        # The end freed the agent: the waiting customer is assigned, and told so.
        await c2.wait_for(of("support.queue", session_id=two, status="active"))
        assert not any(f["type"].startswith("support.session.") for f in c1.frames + c2.frames)


@pytest.fixture(scope="module")
async def connected_only_url(settings: Settings, runtime: Runtime) -> AsyncIterator[str]:
    """An app that routes only to agents with a live WebSocket, served on a real port (the session runtime)."""
    flagged = msgspec.structs.replace(settings, support_require_connection=True)
    app = create_app(flagged, runtime=dataclasses.replace(runtime, settings=flagged))
    async for url in serving(app):
        yield url


async def test_with_connections_required_an_agent_gets_work_the_moment_they_connect(
    client: httpx.AsyncClient, tenant: Tenant, connected_only_url: str
) -> None:
    admin = tenant.as_user("admin")
    async with httpx.AsyncClient(base_url=f"http://{connected_only_url}") as flagged:
        for user_id, role in [("ag", "agent"), ("c1", "customer")]:
            await ok(await flagged.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                        headers=admin), 201)
        await ok(await flagged.put("/support/agents/ag", json={"max_sessions": 2}, headers=admin))
        await ok(await flagged.put("/support/agents/ag/status", json={"status": "available"}, headers=admin))
        session = await ok(await flagged.post("/support/sessions", json={}, headers=tenant.as_user("c1")), 201)
        assert session["status"] == "queued"  # available, but with no connection anywhere
        told = await ok(await flagged.get("/support/agents/ag/status", headers=tenant.as_user("ag")))
        assert (told["status"], told["connected"]) == ("offline", False)
        async with online(flagged, tenant, "ag", connected_only_url) as agent:
            await agent.wait_for(of("support.session.assigned", session_id=session["session_id"]))
            told = await ok(await flagged.get("/support/agents/ag/status", headers=tenant.as_user("ag")))
            assert (told["status"], told["connected"], told["active_sessions"]) == ("available", True, 1)
        # Gone less than support_offline_after_seconds ago: a brief reconnect keeps the agent routable.
        told = await ok(await flagged.get("/support/agents/ag/status", headers=tenant.as_user("ag")))
        assert (told["status"], told["connected"]) == ("available", True)
        record = await ok(await flagged.get(f"/support/sessions/{session['session_id']}/routing", headers=admin))
        assert [a["agent_id"] for a in record["assignments"]] == ["ag"]


async def test_ticket_notes_never_reach_a_customers_websocket_and_mentions_reach_the_agent_as_ids(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime, live_url: str
) -> None:
    admin = tenant.as_user("admin")
    for user_id, role in [("kim", "agent"), ("cu", "customer")]:
        await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                   headers=admin), 201)
    async with online(client, tenant, "kim", live_url) as kim, online(client, tenant, "cu", live_url) as customer:
        ticket = await ok(await client.post("/support/tickets", json={"subject": "s", "description": "d"},
                                            headers=tenant.as_user("cu")), 201)
        await ok(await client.post(f"/support/tickets/{ticket['id']}/escalate",
                                   json={"escalation_type": "tier_2", "notes": "zebracode"}, headers=admin))
        await ok(await client.post(f"/support/tickets/{ticket['id']}/notes",
                                   json={"content": "zebracode", "mention_agent_ids": ["kim"]}, headers=admin), 201)
        # The mention was appended after the note and the escalation, and the relay publishes in log order: once
        # kim has it, the customer's connection has been offered everything before it.
        mention = await kim.wait_for(of("notification", topic="support.ticket.mention"))
        assert mention["payload"]["ticket_id"] == ticket["id"]
        await customer.ws.send(json.dumps({"type": "ping"}))  # a second pong: the connection has caught up
        await customer.wait_for(lambda f: sum(g["type"] == "pong" for g in customer.frames) == 2)
    assert not any("zebracode" in json.dumps(f) or ticket["id"] in json.dumps(f) for f in customer.frames)
    assert not any("zebracode" in json.dumps(f) for f in kim.frames)
