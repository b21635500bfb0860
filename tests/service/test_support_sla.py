"""SLA calendars and policies over HTTP: versions, ordering, matching, the recorded versions, and errors."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from service.commands.support import sla as commands
from service.domain.support.calendars import add_business_time
from service.runtime import Runtime
from tests.conftest import Tenant, error_of

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def policy(name: str, *, calendar_id: str | None = None, first: int = 60, **conditions: list[str]) -> dict[str, Any]:
    return {"name": name, "conditions": conditions, "calendar_id": calendar_id,
            "targets": {"first_response_minutes": first, "resolution_minutes": 480}}


async def test_a_calendar_is_created_then_saved_as_new_versions_and_deleted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.as_user("admin")
    body = {"name": "Berlin office", "timezone": "Europe/Berlin", "periods": WEEK,
            "holidays": ["2026-12-25", "2026-12-24", "2026-12-25"]}
    made = await ok(await client.post("/support/sla/calendars", json=body, headers=admin), 201)
    assert (made["version"], made["holidays"], made["updated_by"]) == (1, ["2026-12-24", "2026-12-25"], "admin")
    cid = made["calendar_id"]
    saved = await ok(await client.put(f"/support/sla/calendars/{cid}", json={**body, "holidays": []}, headers=admin))
    assert (saved["version"], saved["holidays"]) == (2, [])
    assert [c["calendar_id"] for c in await ok(await client.get("/support/sla/calendars", headers=admin))] == [cid]
    await ok(await client.delete(f"/support/sla/calendars/{cid}", headers=admin))
    assert await ok(await client.get("/support/sla/calendars", headers=admin)) == []
    gone = await client.put(f"/support/sla/calendars/{cid}", json=body, headers=admin)
    assert error_of(gone, 404)["code"] == "SLA_CALENDAR_NOT_FOUND"


async def test_a_wrong_calendar_is_a_400_naming_the_field(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.as_user("admin")
    cases = [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"periods": [{"day": "mon", "start": "17:00", "end": "09:00"}]}, "periods[0].end"),
        ({"periods": [{"day": "mon", "start": "9:00", "end": "17:00"}]}, "periods[0].start"),
        ({"periods": []}, "periods"),
        ({"holidays": ["christmas"]}, "holidays[0]"),
    ]
    base = {"name": "c", "timezone": "UTC", "periods": WEEK}
    for change, field in cases:
        err = error_of(await client.post("/support/sla/calendars", json={**base, **change}, headers=admin), 400)
        assert (err["code"], err.get("field")) == ("VALIDATION_ERROR", field), err


async def test_policies_match_in_order_first_match_wins_and_can_be_reordered(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.as_user("admin")
    urgent = await ok(await client.post("/support/sla/policies", json=policy("urgent", priority=["urgent"]),
                                        headers=admin), 201)
    fallback = await ok(await client.post("/support/sla/policies", json=policy("all"), headers=admin), 201)
    assert (urgent["rank"], fallback["rank"]) == (0, 1)
    found = await ok(await client.post("/support/sla/match", json={"priority": "urgent"}, headers=admin))
    assert (found["policy_id"], found["policy_version"], found["calendar_id"]) == (urgent["policy_id"], 1, None)
    order = [fallback["policy_id"], urgent["policy_id"]]
    listed = await ok(await client.put("/support/sla/policy-order", json={"policy_ids": order}, headers=admin))
    assert [p["policy_id"] for p in listed] == order
    found = await ok(await client.post("/support/sla/match", json={"priority": "urgent"}, headers=admin))
    assert found["policy_id"] == fallback["policy_id"]
    partial = await client.put("/support/sla/policy-order", json={"policy_ids": order[:1]}, headers=admin)
    assert error_of(partial, 400)["field"] == "policy_ids"


async def test_no_matching_policy_is_a_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    missing = await client.post("/support/sla/match", json={"priority": "low"}, headers=tenant.as_user("admin"))
    assert error_of(missing, 404)["code"] == "SLA_POLICY_NOT_FOUND"


async def test_a_policy_names_a_live_calendar_which_cannot_be_deleted_while_used(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.as_user("admin")
    unknown = await client.post("/support/sla/policies", json=policy("p", calendar_id="slacal_nope"), headers=admin)
    assert (error_of(unknown, 404)["code"], error_of(unknown)["field"]) == ("SLA_CALENDAR_NOT_FOUND", "calendar_id")
    cal = await ok(await client.post("/support/sla/calendars", headers=admin,
                                     json={"name": "c", "timezone": "UTC", "periods": WEEK}), 201)
    pol = await ok(await client.post("/support/sla/policies", json=policy("p", calendar_id=cal["calendar_id"]),
                                     headers=admin), 201)
    in_use = await client.delete(f"/support/sla/calendars/{cal['calendar_id']}", headers=admin)
    assert error_of(in_use, 409)["code"] == "SLA_CALENDAR_IN_USE"
    await ok(await client.delete(f"/support/sla/policies/{pol['policy_id']}", headers=admin))
    await ok(await client.delete(f"/support/sla/calendars/{cal['calendar_id']}", headers=admin))


async def test_a_ticket_keeps_the_versions_it_was_applied_with_after_both_change(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    admin = tenant.as_user("admin")
    body = {"name": "c", "timezone": "Europe/Berlin", "periods": WEEK}
    cal = await ok(await client.post("/support/sla/calendars", json=body, headers=admin), 201)
    pol = await ok(await client.post("/support/sla/policies", json=policy("p", calendar_id=cal["calendar_id"]),
                                     headers=admin), 201)
    first = await commands.match(runtime, tenant.tenant_id, priority=None, category=None, channel=None)
    evenings = {**body, "periods": [{"day": "mon", "start": "18:00", "end": "20:00"}]}
    await ok(await client.put(f"/support/sla/calendars/{cal['calendar_id']}", json=evenings, headers=admin))
    await ok(await client.put(f"/support/sla/policies/{pol['policy_id']}", json=policy("p2", first=5), headers=admin))
    now = await commands.match(runtime, tenant.tenant_id, priority=None, category=None, channel=None)
    assert (now.policy_version, now.policy.targets.first_response_minutes, now.calendar) == (2, 5, None)
    kept = await commands.applied(runtime, tenant.tenant_id, pol["policy_id"], first.policy_version,
                                  first.calendar_version)
    assert (kept.policy_version, kept.calendar_version, kept.policy.targets.first_response_minutes) == (1, 1, 60)
    assert kept.calendar == first.calendar and kept.calendar is not None
    assert kept.calendar.week[0] == ((540, 1020),)
    monday_8am = datetime(2026, 6, 15, 8, 0, tzinfo=BERLIN)
    assert add_business_time(monday_8am, timedelta(hours=1), kept.calendar) == monday_8am + timedelta(hours=2)


async def test_concurrent_saves_of_one_policy_get_consecutive_versions(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    admin = tenant.as_user("admin")
    pol = await ok(await client.post("/support/sla/policies", json=policy("p"), headers=admin), 201)
    path = f"/support/sla/policies/{pol['policy_id']}"
    saved = await asyncio.gather(*(client.put(path, json=policy(f"v{i}"), headers=admin) for i in range(4)))
    assert [r.status_code for r in saved] == [200] * 4
    versions = await runtime.pool.fetch(
        "SELECT version, name FROM support_sla_policy_versions WHERE tenant_id = $1 ORDER BY version", tenant.tenant_id)
    assert [v["version"] for v in versions] == [1, 2, 3, 4, 5]
    assert sorted(v["name"] for v in versions[1:]) == ["v0", "v1", "v2", "v3"]
