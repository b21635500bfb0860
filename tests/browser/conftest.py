"""One headless Debian Chromium per session, driven by Playwright, and the console served by the session's app.

`python3 dev.py test` installs Chromium (`apt-get install chromium`) when it is missing. Screenshots go to
docs/screenshots/ when ROOMLOG_SCREENSHOTS=1 (to refresh the README's pictures), else to the test's tmp dir.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from starlette.applications import Starlette

from tests.conftest import REPO, Tenant, serving

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
WIDE = {"width": 1100, "height": 720}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; dev.py installs it."""
    assert Path(CHROMIUM).exists(), "Chromium is needed: `python3 dev.py test` installs it (apt-get install chromium)"
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
async def console_url(app: Starlette) -> AsyncIterator[str]:
    """The base URL of the session's app served over HTTP (the console lives at /console/)."""
    server = serving(app)
    host = await anext(server)
    yield f"http://{host}"
    await anext(server, None)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test's screenshots go."""
    return SCREENSHOTS if os.environ.get("ROOMLOG_SCREENSHOTS") == "1" else tmp_path


async def context(browser: Browser, **options: object) -> BrowserContext:
    """A fresh browser profile (its own storage), the viewport wide unless told otherwise."""
    made = await browser.new_context(viewport=options.pop("viewport", WIDE), **options)  # type: ignore[arg-type]
    made.set_default_timeout(15_000)
    return made


async def sign_in(ctx: BrowserContext, console_url: str, tenant: Tenant, user: str) -> Page:
    """A page of the console signed in with the tenant's API key as `user`, its connection live."""
    page = await ctx.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{console_url}/console/")
    await page.get_by_label("API key", exact=True).fill(tenant.api_key)
    await page.get_by_label("User id", exact=True).fill(user)
    await page.get_by_role("button", name="Sign in with key").click()
    await page.locator("#connection[data-state=live]").wait_for()
    return page
