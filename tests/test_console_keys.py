"""The console's Keys page in headless Chromium: issue a key, see it once, revoke it, revoke your own."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from tests.support.browser import CHROMIUM_ARGS, ensure_chromium
from tests.test_console_browser import shot, sign_in
from tradegraph.keys import SHOWN_PREFIX_LENGTH


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched headless once for this module."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def tab(chromium: Browser) -> AsyncIterator[Page]:
    """A fresh context (own sessionStorage) that accepts confirm dialogs; JS errors fail the test."""
    context = await chromium.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    yield page
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def me_status(server: Any, key: str) -> int:
    return httpx.get(f"{server.url}/me", headers={"x-api-key": key}).status_code


async def test_keys_page_issues_shows_once_and_revokes(server: Any, make_user: Any, tab: Page) -> None:
    user = await make_user()
    await sign_in(tab, server.url, user["api_key"])
    await tab.get_by_role("link", name="Keys").click()
    await expect(tab.get_by_role("heading", name="API keys")).to_be_visible()
    own = tab.locator(f'tr[data-key-prefix="{user["api_key"][:SHOWN_PREFIX_LENGTH]}"]')
    await expect(own).to_contain_text("(this browser)")

    form = tab.locator("#issue-key")
    await form.get_by_label("Label").fill("nightly feed")
    await form.get_by_label("Expires at (UTC)").fill("2099-06-30T12:00")
    await form.get_by_role("button", name="Issue key").click()
    shown = tab.get_by_label("New API key")
    await expect(shown).to_be_visible()
    key = await shown.input_value()
    assert me_status(server, key) == 200
    row = tab.locator(f'tr[data-key-prefix="{key[:SHOWN_PREFIX_LENGTH]}"]')
    await expect(row).to_contain_text("nightly feed")
    await expect(row).to_contain_text("2099-06-30 12:00 UTC")
    await shot(tab, "keys")

    await row.get_by_role("button", name="Revoke").click()
    await expect(tab.locator("#keys-notice")).to_contain_text(f"Revoked key {key[:SHOWN_PREFIX_LENGTH]}")
    await expect(row).to_contain_text("revoked")
    await expect(tab.get_by_label("New API key")).to_have_count(0)
    assert me_status(server, key) == 401

    await own.get_by_role("button", name="Revoke").click()  # the key this browser is signed in with
    await expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    assert me_status(server, user["api_key"]) == 401
