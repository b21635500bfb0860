"""The web console in a real browser: two users chat live, one drops off the network and comes back to every
message once and in order, edits/deletions/reactions reach the other side, search highlights, dead letters retry."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from projections.dead_letters import dead_letter_id
from schemas.delivery import DeliveryJob
from service.consumers.webhook_sender import record_failure
from service.runtime import Runtime
from tests.browser.conftest import context, sign_in
from tests.conftest import Tenant
from tests.service.test_webhooks import Receiver, create_webhook


def message(page: Page, text: str):  # type: ignore[no-untyped-def]
    """The list item of the message whose body is `text`."""
    return page.locator("#messages > li", has=page.locator(".body", has_text=re.compile(f"^{re.escape(text)}$")))


async def bodies(page: Page) -> list[str]:
    return await page.locator("#messages > li .body").all_inner_texts()


async def send(page: Page, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_label("Message", exact=True).press("Enter")
    await expect(message(page, text)).to_have_count(1)


@pytest.fixture
async def team(client: httpx.AsyncClient, tenant: Tenant) -> str:
    """A group room "Team" of alice (admin) and bob."""
    response = await client.post("/rooms", json={"type": "group", "members": ["bob"], "name": "Team"},
                                 headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    room_id: str = response.json()["room_id"]
    return room_id


async def test_two_users_chat_live_and_one_back_from_offline_sees_every_message_once_in_order(
    browser: Browser, console_url: str, tenant: Tenant, team: str, shots: Path,
) -> None:
    alice_ctx, bob_ctx = await context(browser), await context(browser)
    try:
        alice = await sign_in(alice_ctx, console_url, tenant, "alice")
        bob = await sign_in(bob_ctx, console_url, tenant, "bob")
        await bob.get_by_role("button", name=re.compile("^Team")).click()
        await alice.get_by_role("button", name=re.compile("^Team")).click()
        await expect(alice.locator("#members")).to_have_text("alice (online), bob (online)")

        await send(alice, "hello bob")
        await expect(message(bob, "hello bob")).to_have_count(1)
        await bob.get_by_label("Message", exact=True).press_sequentially("hi")
        await expect(alice.locator("#typing")).to_have_text("bob is typing…")
        await send(bob, "hi alice")
        await expect(message(alice, "hi alice")).to_have_count(1)
        await expect(alice.locator("#typing")).to_have_text("")

        await bob_ctx.set_offline(True)
        await expect(bob.locator("#connection")).to_have_text("reconnecting…")
        for n in range(1, 4):
            await send(alice, f"while away {n}")
        await bob_ctx.set_offline(False)
        await expect(bob.locator("#connection")).to_have_text("resynced")
        await expect(message(bob, "while away 3")).to_have_count(1)
        expected = ["hello bob", "hi alice", "while away 1", "while away 2", "while away 3"]
        assert await bodies(bob) == expected
        assert await bodies(alice) == expected

        edited = message(alice, "while away 2")
        await edited.get_by_role("button", name="Edit message").click()
        await alice.get_by_label("Edited message").fill("while away 2, edited")
        await alice.get_by_label("Edited message").press("Enter")
        await message(alice, "while away 1").get_by_role("button", name="React with 👍").click()
        await message(alice, "while away 3").get_by_role("button", name="Delete message").click()

        await expect(message(bob, "while away 2, edited")).to_contain_text("(edited)")
        await expect(message(bob, "while away 1").get_by_role("button", name=re.compile("^👍 1"))).to_be_visible()
        await expect(message(bob, "message deleted")).to_have_count(1)
        assert await bodies(bob) == ["hello bob", "hi alice", "while away 1", "while away 2, edited",
                                     "message deleted"]

        await message(bob, "hello bob").get_by_role("button", name="Reply in thread to alice").click()
        await send(bob, "a reply")
        await expect(message(alice, "a reply")).to_have_class(re.compile(r"\breply\b"))
        await expect(message(alice, "hello bob")).to_contain_text("1 reply")
        await alice.screenshot(path=shots / "room.png")
        await bob.screenshot(path=shots / "room-other-side.png")

        await alice.get_by_label("Search messages").fill("away")
        await alice.get_by_label("Search messages").press("Enter")
        await expect(alice.locator("#hits mark").first).to_have_text(re.compile("away", re.IGNORECASE))
        await alice.screenshot(path=shots / "search.png")
    finally:
        await alice_ctx.close()
        await bob_ctx.close()


async def test_the_inbox_counts_unread_messages_live_and_clears_them_when_the_room_is_opened(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, team: str, shots: Path,
) -> None:
    ctx = await context(browser, viewport={"width": 380, "height": 700})
    try:
        bob = await sign_in(ctx, console_url, tenant, "bob")
        for n in range(2):
            response = await client.post(f"/rooms/{team}/messages", json={"content": f"unread {n}"},
                                         headers=tenant.as_user("alice"))
            assert response.status_code == 201, response.text
        room = bob.get_by_role("button", name=re.compile("^Team"))
        await expect(room).to_have_accessible_name("Team, 2 unread")
        await bob.screenshot(path=shots / "inbox-narrow.png")
        await room.click()
        await expect(room).to_have_accessible_name("Team")
        assert await bodies(bob) == ["unread 0", "unread 1"]
    finally:
        await ctx.close()


async def test_mentions_badge_the_inbox_and_a_room_is_muted_and_archived_for_oneself(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, team: str, shots: Path,
) -> None:
    ctx = await context(browser)
    try:
        bob = await sign_in(ctx, console_url, tenant, "bob")
        response = await client.post(f"/rooms/{team}/messages", json={"content": "@bob look", "mentions": ["bob"]},
                                     headers=tenant.as_user("alice"))
        assert response.status_code == 201, response.text
        room = bob.get_by_role("button", name=re.compile("^Team"))
        await expect(room).to_have_accessible_name("Team, 1 unread, 1 mention")
        await expect(room.locator(".badge.mention")).to_have_text("@1")
        await expect(room.locator(".preview")).to_have_text("alice: @bob look")
        await bob.screenshot(path=shots / "inbox-mention.png")
        await room.click()
        await expect(room).to_have_accessible_name("Team")
        await send(bob, "@alice seen it")  # the composer turns @member into a mention
        alice_view = (await client.get(f"/rooms/{team}", headers=tenant.as_user("alice"))).json()
        assert alice_view["mention_count"] == 1

        await bob.get_by_role("button", name="Mute", exact=True).click()
        await expect(room).to_have_accessible_name("Team, muted")
        await bob.get_by_role("button", name="Archive", exact=True).click()
        await expect(bob.locator("#archived-rooms").get_by_role("button", name="Team, muted")).to_be_visible()
        await expect(bob.locator("#rooms > li")).to_have_count(0)
        state = (await client.get(f"/rooms/{team}", headers=tenant.as_user("bob"))).json()
        assert (state["is_muted"], state["is_archived"]) == (True, True)
        await bob.get_by_role("button", name="Unarchive", exact=True).click()
        await expect(bob.locator("#rooms > li")).to_have_count(1)
    finally:
        await ctx.close()


async def test_a_room_pages_backwards_through_its_history_by_keyboard_alone(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, team: str,
) -> None:
    for n in range(35):
        response = await client.post(f"/rooms/{team}/messages", json={"content": f"old {n}"},
                                     headers=tenant.as_user("alice"))
        assert response.status_code == 201, response.text
    ctx = await context(browser)
    try:
        bob = await sign_in(ctx, console_url, tenant, "bob")
        inbox = bob.get_by_role("button", name=re.compile("^Team"))
        await inbox.focus()
        await bob.keyboard.press("Enter")
        await expect(bob.locator("#messages > li")).to_have_count(30)
        assert (await bodies(bob))[0] == "old 5"
        await bob.get_by_role("button", name="Load older messages").focus()
        await bob.keyboard.press("Enter")
        await expect(bob.locator("#messages > li")).to_have_count(35)
        assert await bodies(bob) == [f"old {n}" for n in range(35)]
        await expect(bob.get_by_role("button", name="Load older messages")).to_be_hidden()
        await bob.get_by_label("Message", exact=True).focus()
        await bob.keyboard.type("sent with the keyboard")
        await bob.keyboard.press("Enter")
        await expect(message(bob, "sent with the keyboard")).to_have_count(1)
    finally:
        await ctx.close()


async def test_the_dead_letter_page_retries_a_failed_delivery(
    browser: Browser, console_url: str, client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, shots: Path,
) -> None:
    receiver = Receiver(mode="ok")
    await receiver.start()
    ctx = await context(browser)
    try:
        hook = await create_webhook(client, tenant, receiver.url, events=["notification"])
        job = DeliveryJob(delivery_id=f"dlv-{uuid.uuid4().hex}", tenant_id=tenant.tenant_id,
                          webhook_id=hook["webhook_id"], kind="notification", event="notification", user_id="bob",
                          created_at=datetime.now(UTC), payload={"hello": "again"}, topic="deploys")
        await record_failure(runtime.appender, job, generation=job.delivery_id, attempts=6, error="HTTP 500",
                             at=datetime.now(UTC))
        letter = dead_letter_id(job.delivery_id)

        admin = await sign_in(ctx, console_url, tenant, "admin")
        await admin.get_by_role("button", name="Dead letters").click()
        await expect(admin.locator(f"tr[data-letter-id='{letter}']")).to_contain_text("HTTP 500")
        await admin.screenshot(path=shots / "dead-letters.png")
        await admin.get_by_role("button", name=f"Retry delivery {letter}").click()
        await expect(admin.get_by_role("status").filter(has_text="Queued again")).to_be_visible()
        await expect(admin.locator(f"tr[data-letter-id='{letter}']")).to_have_count(0)
        [call] = await receiver.wait_for_calls(1)
        assert call.headers["x-roomlog-delivery"] == job.delivery_id
    finally:
        await ctx.close()
        await receiver.stop()


async def test_the_sign_in_page_labels_every_field_and_says_what_went_wrong(
    browser: Browser, console_url: str, shots: Path,
) -> None:
    ctx = await context(browser)
    try:
        page = await ctx.new_page()
        await page.goto(f"{console_url}/console/")
        await page.get_by_label("Email", exact=True).fill("nobody@example.com")
        await page.get_by_label("Password", exact=True).fill("wrong password")
        await page.screenshot(path=shots / "sign-in.png")
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("alert")).to_contain_text("AUTHENTICATION_ERROR")
    finally:
        await ctx.close()


async def test_a_user_signed_in_with_email_and_password_creates_a_room_and_chats_over_the_bearer_token(
    browser: Browser, console_url: str, client: httpx.AsyncClient,
) -> None:
    email, password = f"ada-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple"
    signup = await client.post("/auth/signup", json={"email": email, "password": password, "display_name": "Ada"})
    assert signup.status_code == 201, signup.text
    ctx = await context(browser)
    try:
        page = await ctx.new_page()
        await page.goto(f"{console_url}/console/")
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Password", exact=True).fill(password)
        await page.get_by_label("Password", exact=True).press("Enter")
        await page.locator("#connection[data-state=live]").wait_for()
        await page.get_by_label("Name", exact=True).fill("Notes")
        await page.get_by_role("button", name="Create room").click()
        await expect(page.locator("#room-title")).to_have_text("Notes")
        await send(page, "note to self")
        await expect(message(page, "note to self")).to_contain_text(signup.json()["user"]["user_id"])
    finally:
        await ctx.close()
