"""The console's admin pages in a real browser: webhooks and API keys are listed, created with their secret shown
once, and deleted or revoked — each checked against the API itself."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from tests.browser.conftest import context, sign_in
from tests.conftest import Tenant


async def test_webhooks_are_created_with_their_secret_shown_once_and_deleted(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, shots: Path,
) -> None:
    url = f"http://127.0.0.1:9/hook-{uuid.uuid4().hex[:8]}"
    ctx = await context(browser)
    try:
        admin = await sign_in(ctx, console_url, tenant, "admin")
        await admin.get_by_role("button", name="Webhooks").click()
        await expect(admin.locator("#webhooks-status")).to_have_text("No webhooks.")
        await admin.get_by_label("URL").fill(url)
        await admin.get_by_label("notification", exact=True).check()
        await admin.get_by_label("support.ticket_created", exact=True).check()
        await admin.get_by_role("button", name="Create webhook").click()
        secret = admin.get_by_label("Secret", exact=True)
        await expect(secret).to_have_value(re.compile(r"^whsec_.{16,}$"))
        await expect(admin.locator("#webhook-rows tr")).to_have_count(1)
        await expect(admin.locator("#webhook-rows tr")).to_contain_text("notification, support.ticket_created")
        listed = (await client.get("/webhooks", headers=tenant.as_user("admin"))).json()
        assert [(h["url"], sorted(h["events"])) for h in listed] == [(url, ["notification", "support.ticket_created"])]
        assert "secret" not in listed[0]
        await admin.screenshot(path=shots / "webhooks.png")

        await admin.get_by_role("button", name="Chat").click()
        await admin.get_by_role("button", name="Webhooks").click()
        await expect(admin.locator("#webhook-secret")).to_be_hidden()  # shown once: gone when the page is left
        await admin.get_by_role("button", name=f"Delete webhook {url}").click()
        await expect(admin.locator("#webhooks-status")).to_have_text(f"Deleted the webhook for {url}.")
        await expect(admin.locator("#webhook-rows tr")).to_have_count(0)
        assert (await client.get("/webhooks", headers=tenant.as_user("admin"))).json() == []
    finally:
        await ctx.close()


async def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(
    browser: Browser, console_url: str, client: httpx.AsyncClient, tenant: Tenant, shots: Path,
) -> None:
    ctx = await context(browser)
    try:
        admin = await sign_in(ctx, console_url, tenant, "admin")
        await admin.get_by_role("button", name="API keys").click()
        await admin.get_by_label("Key name").fill("ci runner")
        await admin.get_by_label("Role").select_option("member")
        await admin.get_by_role("button", name="Create key").click()
        shown = admin.get_by_label("New API key")
        await expect(shown).not_to_have_value("")
        key = await shown.input_value()
        row = admin.locator("#key-rows tr", has_text="ci runner")
        await expect(row).to_contain_text("member")
        assert (await row.locator("code").inner_text()) in key  # the list shows the prefix, never the key
        headers = {"X-API-Key": key, "X-User-Id": "ci"}
        assert (await client.get("/rooms", headers=headers)).status_code == 200
        await admin.screenshot(path=shots / "api-keys.png")

        await admin.get_by_role("button", name="Revoke key ci runner").click()
        await expect(admin.locator("#keys-status")).to_have_text("Revoked key ci runner.")
        await expect(row).to_contain_text("revoked")
        assert (await client.get("/rooms", headers=headers)).status_code == 401
    finally:
        await ctx.close()
