"""The console's admin pages in a real browser: webhooks and API keys are listed, created with their secret shown
once, and deleted or revoked; the platform admin reads and changes a tenant's limits — each checked against the API."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from playwright.async_api import Browser, expect

from schemas.config import Settings
from service.app import create_app
from service.identity.auth import Authenticator
from service.runtime import Runtime
from tests.browser.conftest import context, sign_in
from tests.conftest import Tenant, serving

PLATFORM_KEY = "rlk_platform_console_" + uuid.uuid4().hex


@pytest.fixture(scope="module")
async def platform_console_url(settings: Settings, runtime: Runtime) -> AsyncIterator[str]:
    """The console served by an app that knows a platform admin key."""
    with_key = msgspec.structs.replace(settings, platform_admin_key=PLATFORM_KEY)
    auth = Authenticator(runtime.pool, runtime.auth.signer, platform_admin_key=PLATFORM_KEY)
    server = serving(create_app(with_key, runtime=dataclasses.replace(runtime, settings=with_key, auth=auth)))
    yield f"http://{await anext(server)}"
    await anext(server, None)


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


async def test_the_platform_admin_reads_and_changes_a_tenants_limits(
    browser: Browser, platform_console_url: str, tenant: Tenant, settings: Settings, shots: Path,
) -> None:
    platform = {"X-API-Key": PLATFORM_KEY}
    ctx = await context(browser)
    try:
        admin = await sign_in(ctx, platform_console_url, tenant, "admin")
        await admin.get_by_role("button", name="Tenant limits").click()
        await expect(admin.get_by_label("Tenant id")).to_have_value(tenant.tenant_id)  # from /auth/me
        await admin.get_by_label("Platform admin key").fill("rlk_not_the_platform_key")
        await admin.get_by_role("button", name="Load limits").click()
        await expect(admin.locator("#limits-status")).to_contain_text("(AUTHENTICATION_ERROR)")
        await expect(admin.locator("#limits-form")).to_be_hidden()

        await admin.get_by_label("Platform admin key").fill(PLATFORM_KEY)
        await admin.get_by_role("button", name="Load limits").click()
        largest = admin.get_by_label("Largest upload (bytes)")
        await expect(largest).to_have_value("")  # the tenant has none of its own: the default shows greyed
        await expect(largest).to_have_attribute("placeholder", str(settings.media_max_bytes))
        await admin.get_by_label("Requests per second").fill("50")
        await largest.fill("1000")
        await admin.get_by_label("Allowed upload types").fill("text/csv, image/png")
        await admin.get_by_role("button", name="Save limits").click()
        await expect(admin.locator("#limits-status")).to_have_text("Saved.")
        await admin.screenshot(path=shots / "tenant-limits.png")

        async with httpx.AsyncClient(base_url=platform_console_url) as http:
            tenant_view = (await http.get(f"/admin/tenants/{tenant.tenant_id}", headers=platform)).json()
            media = (await http.get(f"/admin/tenants/{tenant.tenant_id}/media-limits", headers=platform)).json()
        assert (tenant_view["rate_limit"], tenant_view["send_rate_limit"]) == (50, None)
        assert (media["max_bytes"], sorted(media["allowed_types"]), sorted(media["overridden"])) == (
            1000, ["image/png", "text/csv"], ["allowed_types", "max_bytes"])
        assert media["quota_bytes"] == settings.media_quota_bytes
    finally:
        await ctx.close()
