"""The console's agent desk in a real browser: an agent sees their sessions and the queue, chats with a customer
in the session's room, ends a session (and routing hands over the next one), takes and transfers; tickets list with
their badges, and a ticket's reply reaches the customer while an internal note stays internal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from tests.browser.conftest import context, sign_in
from tests.browser.test_console import message, send
from tests.conftest import Tenant


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def user(client: httpx.AsyncClient, tenant: Tenant, user_id: str, role: str) -> None:
    await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id.title(), "role": role},
                               headers=tenant.as_user("admin")), 201)


async def agent(client: httpx.AsyncClient, tenant: Tenant, agent_id: str, *, status: str) -> None:
    await user(client, tenant, agent_id, "agent")
    await ok(await client.put(f"/support/agents/{agent_id}", json={"max_sessions": 1, "languages": ["en"]},
                              headers=tenant.as_user("admin")))
    await ok(await client.put(f"/support/agents/{agent_id}/status", json={"status": status},
                              headers=tenant.as_user(agent_id)))


async def start(client: httpx.AsyncClient, tenant: Tenant, customer: str, text: str) -> dict[str, Any]:
    await user(client, tenant, customer, "customer")
    return dict(await ok(await client.post("/support/sessions", json={"initial_message": text},
                                           headers=tenant.as_user(customer)), 201))


async def test_an_agent_works_the_desk_chats_in_the_session_room_ends_and_transfers(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, shots: Path,
) -> None:
    await agent(client, tenant, "sam", status="available")  # room for one session
    await agent(client, tenant, "kim", status="away")
    first = await start(client, tenant, "cust", "my order is late")
    second = await start(client, tenant, "dan", "wrong size")
    assert (first["assigned_agent"]["id"], second["status"]) == ("sam", "queued")
    ctx = await context(browser)
    try:
        sam = await sign_in(ctx, console_url, tenant, "sam")
        await sam.get_by_role("button", name="Desk").click()
        await expect(sam.locator("#my-sessions > li")).to_contain_text("Cust")
        await expect(sam.locator("#queue > li")).to_contain_text("Dan")
        await expect(sam.locator("#queue > li")).to_contain_text("position 1")
        await sam.screenshot(path=shots / "desk.png")

        await sam.get_by_role("button", name="Open chat with Cust").click()
        await expect(message(sam, "my order is late")).to_have_count(1)
        await send(sam, "hi, I am Sam: looking now")
        detail = await ok(await client.get(f"/support/sessions/{first['session_id']}", headers=tenant.as_user("cust")))
        assert [(m["sender"], m["content"]) for m in detail["messages"]] == [
            ("customer", "my order is late"), ("agent", "hi, I am Sam: looking now")]

        await sam.get_by_role("button", name="Desk").click()
        await sam.get_by_role("button", name="Take Dan").click()  # kept for sam, who is full
        await expect(sam.locator("#queue > li")).to_contain_text("transferred")
        await expect(sam.get_by_role("button", name="Take Dan")).to_have_count(0)
        await sam.get_by_role("button", name="End session with Cust").click()
        # Ending frees sam's one place: routing assigns Dan to sam, and the desk shows it.
        await expect(sam.locator("#my-sessions > li")).to_contain_text("Dan")
        taken = await ok(await client.get(f"/support/sessions/{second['session_id']}", headers=tenant.as_user("sam")))
        assert (taken["status"], taken["assigned_agent"]["id"]) == ("active", "sam")
        await expect(sam.locator("#queue > li")).to_have_text("Nobody is waiting.")

        await sam.get_by_label("Transfer Dan to agent").fill("kim")
        await sam.get_by_role("button", name="Transfer Dan", exact=True).click()
        await expect(sam.locator("#my-sessions > li")).to_have_text("No sessions assigned to you.")
        await expect(sam.locator("#queue > li")).to_contain_text("transferred")
        moved = await ok(await client.get(f"/support/sessions/{second['session_id']}", headers=tenant.as_user("sam")))
        assert (moved["status"], moved["assigned_agent"]) == ("transferred", None)
    finally:
        await ctx.close()


async def test_tickets_list_with_badges_and_a_reply_reaches_the_customer_while_the_note_stays_internal(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, shots: Path,
) -> None:
    await user(client, tenant, "sam", "agent")
    await user(client, tenant, "cust", "customer")
    filed = await ok(await client.post("/support/tickets", json={
        "subject": "Missing item", "description": "The side salad was missing", "priority": "high",
    }, headers=tenant.as_user("cust")), 201)
    ctx = await context(browser)
    try:
        sam = await sign_in(ctx, console_url, tenant, "sam")
        await sam.get_by_role("button", name="Tickets").click()
        row = sam.locator(f"#ticket-rows tr[data-ticket-id='{filed['id']}']")
        await expect(row).to_contain_text(filed["number"])
        await expect(row.locator(".badge.status-new")).to_have_text("new")
        await expect(row.locator(".badge.priority-high")).to_have_text("high")
        await expect(row.locator("td").nth(4)).to_have_text("—")  # no SLA policy applies
        await sam.screenshot(path=shots / "tickets.png")

        await sam.get_by_role("button", name=f"Open ticket {filed['number']}").click()
        await expect(sam.locator("#ticket-title")).to_have_text(f"{filed['number']} Missing item")
        await sam.get_by_role("button", name="Assign to me").click()
        await expect(sam.locator("#ticket-meta")).to_contain_text("no SLA · customer Cust · assigned to sam")
        await expect(sam.get_by_role("button", name="Assign to me")).to_have_count(0)
        await sam.get_by_label("Change status").select_option("open")
        await sam.get_by_role("button", name="Save status").click()
        await expect(sam.locator("#ticket-meta .badge.status-open")).to_have_text("open")

        await sam.get_by_label("Reply or note").fill("A new salad is on its way")
        await sam.get_by_role("button", name="Send reply to customer").click()
        await expect(sam.locator("#ticket-thread > li.comment")).to_contain_text("A new salad is on its way")
        await sam.get_by_label("Reply or note").fill("check the packing line")
        await sam.get_by_role("button", name="Add internal note").click()
        note = sam.locator("#ticket-thread > li.note")
        await expect(note).to_contain_text("check the packing line")
        await expect(note).to_contain_text("Internal note: not shown to the customer")
        await sam.screenshot(path=shots / "ticket.png")

        seen = await ok(await client.get(f"/support/tickets/{filed['id']}", headers=tenant.as_user("cust")))
        assert [c["content"] for c in seen["comments"]] == ["A new salad is on its way"]
        assert seen["notes"] == [] and seen["status"] == "open"
        staff = await ok(await client.get(f"/support/tickets/{filed['id']}", headers=tenant.as_user("sam")))
        assert [n["content"] for n in staff["notes"]] == ["check the packing line"]
        await expect(sam.locator("#ticket-thread > li")).to_have_count(2)
        assert re.search("salad", await sam.locator("#ticket-description").inner_text())
    finally:
        await ctx.close()
