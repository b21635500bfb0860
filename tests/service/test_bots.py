"""The bots API (service/routes/bots.py): registration events, the bot's own bound key, and what a bot may do."""

from __future__ import annotations

from typing import Any

import httpx

from service.runtime import Runtime
from tests.conftest import Tenant, error_of

HOOK = {"webhook_url": "http://127.0.0.1:9/bot", "secret": "s" * 32}


async def register(client: httpx.AsyncClient, tenant: Tenant, bot_id: str = "aurora", **extra: Any) -> dict[str, Any]:
    body = {"user_id": bot_id, "display_name": "Aurora", "delivery": HOOK, "triggers": ["mention"], **extra}
    response = await client.post("/bots", json=body, headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_register_shows_the_key_once_and_lists_without_secrets(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await register(client, tenant)
    assert created["api_key"].startswith("rlk_") and created["secret"] is None
    listed = (await client.get("/bots", headers=tenant.as_user("admin"))).json()
    assert listed == [{k: created[k] for k in ("bot_id", "user_id", "display_name", "delivery", "triggers",
                                                "created_at", "updated_at")}]
    assert "secret" not in str(listed) and "api_key" not in str(listed)
    user = (await client.get("/users", headers=tenant.as_user("admin"))).json()
    assert {"user_id": "aurora", "role": "bot"}.items() <= next(u for u in user if u["user_id"] == "aurora").items()


async def test_each_change_is_an_event_of_the_bots_stream(client: httpx.AsyncClient, tenant: Tenant,
                                                          pool: Any) -> None:
    await register(client, tenant)
    admin = tenant.as_user("admin")
    patched = await client.patch("/bots/aurora", json={"triggers": ["dm", "mention"], "display_name": "Au"},
                                 headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["triggers"] == ["dm", "mention"] and patched.json()["display_name"] == "Au"
    assert (await client.delete("/bots/aurora", headers=admin)).status_code == 200
    types = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                             f"bot:{tenant.tenant_id}:aurora")
    assert [r["type"] for r in types] == ["bot.registered", "bot.updated", "bot.deleted"]
    assert error_of(await client.get("/bots/aurora", headers=admin), 404)["code"] == "BOT_NOT_FOUND"
    assert (await client.get("/bots", headers=admin)).json() == []


async def test_a_deleted_bots_key_stops_working_and_it_can_be_registered_again(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await register(client, tenant)
    assert (await client.get("/rooms", headers={"X-API-Key": first["api_key"]})).status_code == 200
    await client.delete("/bots/aurora", headers=tenant.as_user("admin"))
    assert (await client.get("/rooms", headers={"X-API-Key": first["api_key"]})).status_code == 401
    second = await register(client, tenant)
    assert second["key_id"] != first["key_id"]
    assert (await client.get("/rooms", headers={"X-API-Key": second["api_key"]})).status_code == 200


async def test_a_bots_key_acts_only_for_the_bot(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await register(client, tenant))["api_key"]
    assert error_of(await client.get("/rooms", headers={"X-API-Key": key, "X-User-Id": "admin"}), 401)
    assert (await client.get("/rooms", headers={"X-API-Key": key, "X-User-Id": "aurora"})).status_code == 200


async def test_a_bot_acts_only_in_rooms_it_is_a_member_of(client: httpx.AsyncClient, tenant: Tenant) -> None:
    bot = {"X-API-Key": (await register(client, tenant))["api_key"]}
    alice = tenant.as_user("alice")
    mine = (await client.post("/rooms", json={"type": "group", "members": ["aurora"]}, headers=alice)).json()
    other = (await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=alice)).json()
    sent = await client.post(f"/rooms/{mine['room_id']}/messages", json={"content": "hi"}, headers=bot)
    assert sent.status_code == 201, sent.text
    refused = await client.post(f"/rooms/{other['room_id']}/messages", json={"content": "hi"}, headers=bot)
    assert error_of(refused, 403)["code"] == "NOT_A_MEMBER"
    assert error_of(await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=bot), 403)
    assert error_of(await client.get("/users", headers=bot), 403)


async def test_a_user_who_is_not_a_bot_cannot_be_registered_as_one(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.as_user("admin")
    await client.post("/users", json={"user_id": "carol", "display_name": "Carol"}, headers=admin)
    body = {"user_id": "carol", "display_name": "C", "delivery": HOOK, "triggers": ["mention"]}
    assert error_of(await client.post("/bots", json=body, headers=admin), 409)["code"] == "BOT_EXISTS"
    await register(client, tenant)
    again = {**body, "user_id": "aurora"}
    assert error_of(await client.post("/bots", json=again, headers=admin), 409)["code"] == "BOT_EXISTS"


async def test_bad_registrations_are_400_on_their_field(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.as_user("admin")
    base = {"user_id": "b", "display_name": "B", "triggers": ["mention"]}
    cases = [
        ({**base, "delivery": {}}, "delivery"),
        ({**base, "delivery": {**HOOK, "nats_subject": "bots.b"}}, "delivery"),
        ({**base, "delivery": {"nats_subject": "rl.x.room.y"}}, "delivery"),
        ({**base, "delivery": {"nats_subject": "bots.b", "secret": "s" * 32}}, "delivery"),
        ({**base, "delivery": HOOK, "triggers": []}, "triggers"),
        ({**base, "delivery": HOOK, "triggers": ["everything"]}, "triggers"),
        ({**base, "user_id": "a b", "delivery": HOOK}, "user_id"),
    ]
    for body, field in cases:
        error = error_of(await client.post("/bots", json=body, headers=admin), 400)
        assert error["field"].split(".")[0].split("[")[0] == field, (body, error)
    assert (await client.get("/bots", headers=admin)).json() == []


async def test_a_generated_secret_is_shown_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await register(client, tenant, delivery={"webhook_url": HOOK["webhook_url"]})
    assert created["secret"].startswith("whsec_")
    nats_bot = await register(client, tenant, "inside", delivery={"nats_subject": "bots.inside"})
    assert nats_bot["delivery"] == {"nats_subject": "bots.inside"} and nats_bot["secret"] is None


async def test_a_reply_token_acts_as_the_bot_until_the_bot_is_deleted(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    await register(client, tenant)
    token, _ = runtime.auth.signer.issue(tenant_id=tenant.tenant_id, user_id="aurora", role="bot", session_id=None,
                                         token_type="bot", ttl_seconds=60)
    bearer = {"Authorization": f"Bearer {token}"}
    room = (await client.post("/rooms", json={"type": "group", "members": ["aurora"]},
                              headers=tenant.as_user("alice"))).json()
    sent = await client.post(f"/rooms/{room['room_id']}/messages", json={"content": "beep"}, headers=bearer)
    assert sent.status_code == 201, sent.text
    assert error_of(await client.get("/users", headers=bearer), 403)  # the bot's role, not more
    await client.delete("/bots/aurora", headers=tenant.as_user("admin"))
    assert error_of(await client.get("/rooms", headers=bearer), 401)["code"] == "AUTHENTICATION_ERROR"
