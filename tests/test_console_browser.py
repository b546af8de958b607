"""The web console in headless Chromium against the real server and database.

Screenshots of the main pages are saved under test-artifacts/ for people to look at.
"""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page, Request, Route, async_playwright, expect

from tests.conftest import ARTIFACTS
from tests.support.browser import CHROMIUM_ARGS, ensure_chromium
from tests.test_console_orders import open_limit_order, status_of

SESSION_FORM = {"start": "2012-01-03", "end": "2012-01-10", "symbols": "AAPL"}
"""Six daily bars; with approval above 1,000 the first bar's ~9,870 AAPL buy pauses."""
BLUE_PIXELS = """(el) => {
  const canvas = el.querySelector("canvas");
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && data[i + 2] > 150 && data[i] < 90 && data[i + 1] < 120) n++;
  }
  return n;
}"""
"""Pixels of the strategy line (#1d4ed8) on the chart's canvas: zero when nothing was drawn."""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched headless once for this module."""
    executable = ensure_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (its own sessionStorage) and page; JS errors fail the test."""
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


async def sign_in(page: Page, url: str, key: str, *, accepted: bool = True) -> None:
    """Sign in on the home page; with `accepted`, wait until the console shows who is signed in."""
    await page.goto(f"{url}/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    if accepted:
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def paused_session(url: str, key: str, model_id: int) -> str:
    """A session started through the API that pauses on its first bar; returns its thread id."""
    headers = {"x-api-key": key}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        thread = (await client.post("/threads", json={"metadata": {"model_id": model_id}})).json()
        run = {
            "assistant_id": "trading_session",
            "input": {**SESSION_FORM, "symbols": ["AAPL"], "mode": "daily", "decider": "rule"},
            "stream_mode": ["values", "updates", "custom"],
        }
        response = await client.post(f"/threads/{thread['thread_id']}/runs", json=run)
        assert response.status_code == 200, response.text
    return str(thread["thread_id"])


async def finished_session(url: str, key: str, model_id: int, session: dict[str, Any]) -> str:
    """A session run through the API to its end (no approvals); returns its thread id."""
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
        thread_id = (await client.post("/threads", json={"metadata": {"model_id": model_id}})).json()[
            "thread_id"
        ]
        run = {"assistant_id": "trading_session", "input": session, "stream_mode": ["custom"]}
        response = await client.post(f"/threads/{thread_id}/runs", json=run)
        assert response.status_code == 200, response.text
        joined = await client.get(f"/threads/{thread_id}/runs/{response.json()['run_id']}/join", timeout=60)
        assert "__error__" not in joined.json()
    return str(thread_id)


async def test_a_wrong_key_shows_a_clear_message(server: Any, page: Page) -> None:
    await sign_in(page, server.url, "tg_not-a-real-key", accepted=False)
    message = page.locator("#sign-in-message")
    await expect(message).to_contain_text("That API key was not accepted (invalid API key)")
    await expect(page.locator("#content")).to_be_hidden()
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('tradegraph.apiKey')") is None
    await shot(page, "wrong-key")


async def test_sign_in_create_model_start_approve_and_sign_out(
    server: Any, make_user: Any, page: Page
) -> None:
    user = await make_user()
    await page.goto(f"{server.url}/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shot(page, "sign-in")
    await sign_in(page, server.url, user["api_key"])
    await expect(page.locator("#who-name")).to_have_text(user["name"])
    await expect(page.locator("#no-models")).to_be_visible()

    # create a model, then see the API's validation message for a duplicate signature
    signature = f"console-{uuid.uuid4().hex[:8]}"
    form = page.locator("#create-model")
    for label, value in (
        ("Name", "Console momentum"),
        ("Signature", signature),
        ("Initial cash", "100000"),
        ("Ask for approval above notional", "1000"),
    ):
        await form.get_by_label(label).fill(value)
    await form.get_by_role("button", name="Create model").click()
    row = page.locator("#models-table tbody tr", has_text="Console momentum")
    await expect(row).to_have_count(1)
    await expect(row.locator("td").nth(2)).to_have_text("100,000.00")
    await expect(page.get_by_role("status")).to_contain_text("Created model Console momentum")
    await page.locator("#create-model").get_by_label("Name").fill("Again")
    await page.locator("#create-model").get_by_label("Signature").fill(signature)
    await page.locator("#create-model").get_by_label("Initial cash").fill("5000")
    await page.locator("#create-model").get_by_role("button", name="Create model").click()
    await expect(page.locator("#model-signature-error")).to_contain_text(
        "already have a model with signature"
    )
    await expect(page.locator("#model-signature")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#models-table tbody tr")).to_have_count(1)
    await shot(page, "models")

    # start a session from the model page and land on its live page, paused for approval
    await row.get_by_role("link", name="Console momentum").click()
    await expect(page.get_by_role("heading", name=re.compile("Console momentum"))).to_be_visible()
    session_form = page.locator("#start-session")
    for label, value in (("First day", SESSION_FORM["start"]), ("Last day", SESSION_FORM["end"])):
        await session_form.get_by_label(label).fill(value)
    await session_form.get_by_label("Symbols").fill(SESSION_FORM["symbols"])
    await session_form.get_by_role("button", name="Start session").click()
    await page.wait_for_url(re.compile(r"/console/sessions/[0-9a-f-]{36}$"))
    thread_id = page.url.rsplit("/", 1)[1]
    approval = page.locator("#approval")
    await expect(approval).to_be_visible(timeout=20_000)
    await expect(page.locator("#approval-symbol")).to_have_text("AAPL")
    await expect(page.locator("#approval-side")).to_have_text("buy")
    await expect(page.locator("#approval-quantity")).to_have_text("24")
    await expect(page.locator("#approval-notional")).to_have_text("9,869.52")
    await expect(page.locator("#approval-limit")).to_have_text("approval_notional")
    await expect(page.locator("#status")).to_have_text("waiting for approval")
    await expect(page.locator("#verdicts tbody tr")).to_have_count(1)
    await expect(page.locator("#verdicts tbody tr")).to_contain_text("needs approval")
    await expect(page.locator("#fills tbody tr")).to_have_count(0)
    await shot(page, "live-paused")

    # approve from the page: the session resumes, the fill appears and the curve grows to six bars
    approve = page.get_by_role("button", name="Approve", exact=True)
    await expect(approve).to_be_focused()  # the panel takes the focus: Enter approves
    await page.keyboard.press("Enter")
    await expect(approval).to_be_hidden()
    fill = page.locator("#fills tbody tr")
    await expect(fill).to_have_count(1, timeout=20_000)
    await expect(fill).to_contain_text("AAPL")
    await expect(fill).to_contain_text("filled")
    await expect(fill.locator("td").nth(3)).to_have_text("24")
    await expect(page.locator("#status")).to_have_text("finished", timeout=20_000)
    chart = page.locator("#live-chart")
    await expect(chart).to_have_attribute("data-points", "6")
    assert await chart.evaluate(BLUE_PIXELS) > 50
    await expect(chart.locator("canvas")).to_have_attribute(
        "aria-label", re.compile(r"6 bars to 2012-01-10 16:00")
    )
    await expect(page.locator("#progress")).to_have_text("6 of 6")
    await expect(page.locator("#clock")).to_have_text("2012-01-10 16:00")
    await expect(page.locator("#run-error")).to_be_hidden()
    await shot(page, "live-finished")

    # the model page now has the curve, the trade and the finished session
    await page.locator("#model-link").click()
    model_chart = page.locator("#model-chart")
    await expect(model_chart).to_have_attribute("data-points", "6")
    assert await model_chart.evaluate(BLUE_PIXELS) > 50
    assert await model_chart.locator(".u-legend").inner_text() != ""
    await expect(page.locator("#trades tbody tr")).to_have_count(1)
    await expect(page.locator("#positions tbody tr")).to_contain_text("AAPL")
    session_row = page.locator("#sessions tbody tr", has_text=thread_id)
    await expect(session_row).to_contain_text("finished")
    await shot(page, "model")

    await session_row.get_by_role("link", name="How to open it").click()
    await expect(page.locator("#studio-thread-id")).to_have_text(thread_id)
    href = await page.locator("#studio-link").get_attribute("href") or ""
    assert href.startswith("https://smith.langchain.com/studio/?")
    assert parse_qs(urlsplit(href).query) == {"baseUrl": [server.url]}
    await shot(page, "studio")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in-message")).to_have_text("You are signed out.")
    await expect(page.locator("#content")).to_be_hidden()
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('tradegraph.apiKey')") is None
    await page.goto(f"{server.url}/console/sessions/{thread_id}")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#fills tbody tr")).to_have_count(0)


async def test_live_page_rejoins_a_dropped_stream_and_approves_fewer_shares(
    server: Any, make_model: Any, page: Page
) -> None:
    model = await make_model(approval_notional="1000")
    thread_id = await paused_session(server.url, model["api_key"], model["id"])
    streams: list[Request] = []
    cut_after: list[int] = []

    async def drop_first_stream(route: Route) -> None:
        streams.append(route.request)
        if len(streams) > 1:
            await route.continue_()
            return
        events = (await (await route.fetch()).text()).replace("\r\n", "\n").split("\n\n")
        first_decision = next(i for i, e in enumerate(events) if '"type":"decision"' in e)
        prefix = events[: first_decision + 1]  # the connection drops right after the first decision
        cut_after.append(int(re.findall(r"^id: (\d+)", prefix[-1], re.M)[0]))
        body = "\n\n".join(prefix) + "\n\n"
        await route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    await page.route(re.compile(r"/runs/[0-9a-f-]+/stream"), drop_first_stream)
    await sign_in(page, server.url, model["api_key"])
    await page.goto(f"{server.url}/console/sessions/{thread_id}")
    await expect(page.locator("#approval")).to_be_visible(timeout=20_000)
    assert len(streams) >= 2
    assert "last-event-id" not in streams[0].headers
    assert streams[1].headers["last-event-id"] == str(cut_after[0])
    await expect(page.locator("#connection")).to_contain_text("Paused")
    await expect(page.locator("#decisions tbody tr")).to_have_count(1)
    await expect(page.locator("#verdicts tbody tr")).to_have_count(1)

    smaller = page.get_by_label("Approve a smaller quantity")
    await smaller.fill("25")
    await page.keyboard.press("Enter")  # more than proposed: the browser refuses the form
    assert await smaller.evaluate("el => el.validity.rangeOverflow")
    await expect(page.locator("#approval")).to_be_visible()
    await smaller.fill("10")
    await page.get_by_role("button", name="Approve smaller quantity").click()
    fill = page.locator("#fills tbody tr")
    await expect(fill).to_have_count(1, timeout=20_000)
    await expect(fill.locator("td").nth(3)).to_have_text("10")
    await expect(page.locator("#status")).to_have_text("finished", timeout=20_000)


async def test_live_page_shows_a_failed_run(server: Any, make_model: Any, pool: Any, page: Page) -> None:
    model = await make_model()
    async with pool.connection() as conn:  # a ledger without a cash account makes the session fail for real
        await conn.execute("DELETE FROM cash_accounts WHERE model_id = %s", (model["id"],))
    thread_id = await paused_session(server.url, model["api_key"], model["id"])
    await sign_in(page, server.url, model["api_key"])
    await page.goto(f"{server.url}/console/sessions/{thread_id}")
    error = page.locator("#run-error")
    await expect(error).to_be_visible(timeout=20_000)
    await expect(error).to_have_text(
        f"The session failed. LookupError: model {model['id']} has no cash account"
    )


async def test_models_page_sparkline_and_trades_pages(server: Any, make_model: Any, page: Page) -> None:
    model = await make_model()
    year = {"mode": "daily", "start": "2011-07-01", "end": "2012-06-29", "symbols": ["AAPL", "MSFT", "IBM"]}
    await finished_session(server.url, model["api_key"], model["id"], {**year, "decider": "rule"})
    await sign_in(page, server.url, model["api_key"])
    row = page.locator(f"#models-table tbody tr[data-model-id='{model['id']}']")
    await expect(row).to_have_count(1)
    points = await row.locator("svg.sparkline polyline").get_attribute("points") or ""
    heights = {point.split(",")[1] for point in points.split()}
    assert len(points.split()) >= 10 and len(heights) > 5  # a drawn curve, not a flat or empty line
    assert await row.locator("svg.sparkline").get_attribute("aria-label") == (
        f"Equity trend of test model, {await row.locator('td').nth(3).inner_text()} total return"
    )
    await shot(page, "models-with-data")

    await row.get_by_role("link", name="test model").click()
    pages = page.locator("#trades-range")
    await expect(pages).to_have_text(re.compile(r"Trades 1–20 of \d+"))
    total = int((await pages.inner_text()).rsplit(" ", 1)[1])
    assert total > 20
    first_page = await page.locator("#trades tbody").inner_text()
    await page.get_by_role("button", name="Older trades").click()
    await expect(pages).to_have_text(f"Trades 21–{min(40, total)} of {total}")
    assert await page.locator("#trades tbody").inner_text() != first_page
    await page.get_by_role("button", name="Newer trades").click()
    await expect(pages).to_have_text(f"Trades 1–20 of {total}")
    assert await page.locator("#trades tbody").inner_text() == first_page
    await shot(page, "model-with-data")


async def test_model_page_cancels_an_open_order_and_shows_a_short(
    server: Any, make_model: Any, pool: Any, page: Page
) -> None:
    model = await make_model()
    order_id = await open_limit_order(pool, model["id"])
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO positions (model_id, symbol, quantity) VALUES (%s, 'MSFT', -5)", (model["id"],)
        )
    await sign_in(page, server.url, model["api_key"])
    await page.goto(f"{server.url}/console/models/{model['id']}")
    short = page.locator("#positions tbody tr", has_text="MSFT")
    await expect(short.locator("td").nth(1)).to_have_text("short")
    await expect(short.locator("td").nth(2)).to_have_text("-5")
    row = page.locator(f"#open-orders tr[data-order-id='{order_id}']")
    await expect(row).to_contain_text("limit")
    await expect(row).to_contain_text("90.00")
    await expect(row.locator(".badge")).to_have_text("open")
    await expect(page.locator("#trades tbody tr").first).to_contain_text("open")
    await shot(page, "model-open-orders")

    await page.get_by_role("button", name=f"Cancel order {order_id}").click()
    await expect(page.locator("#open-orders-notice")).to_have_text(f"Cancelled order {order_id}.")
    await expect(row).to_have_count(0)
    await expect(page.locator("#open-orders")).to_contain_text("No open orders")
    await expect(page.locator("#trades tbody tr").first).to_contain_text("cancelled")  # reloaded too
    assert await status_of(pool, order_id) == "cancelled"


async def test_an_arena_started_in_the_console_overlays_one_curve_per_bot(
    server: Any, make_user: Any, make_model: Any, page: Page
) -> None:
    user = await make_user()
    trader = await make_model(owner=user)
    idle = await make_model(owner=user, max_trades_per_day=0)
    await sign_in(page, server.url, user["api_key"])
    await page.get_by_role("link", name="Arenas").click()
    boxes = page.locator("#arena-bots input[type=checkbox]")
    await expect(boxes).to_have_count(2)
    await page.get_by_label(f"test model ({trader['signature']})").check()
    await page.get_by_label(f"test model ({idle['signature']})").check()
    await page.get_by_label("Symbols").fill("AAPL,MSFT,IBM")
    await page.get_by_role("button", name="Start the arena").click()
    await expect(page).to_have_url(re.compile(r"/console/arenas/[0-9a-f-]{36}$"))
    await expect(page.locator("#arena-connection")).to_have_text("every session has ended", timeout=60_000)
    rows = page.locator("#standings tbody tr")
    await expect(rows).to_have_count(2)
    for i in range(2):
        await expect(rows.nth(i)).to_contain_text("success")
        await expect(rows.nth(i)).to_contain_text("62 / 62")
    chart = page.locator("#arena-chart")
    await expect(chart).to_have_attribute("data-points", "62")
    labels = await chart.evaluate("(el) => el.uplot.series.slice(1).map((s) => s.label)")
    assert labels == [trader["signature"], idle["signature"], "Buy and hold"], (
        "one curve per bot, and the market"
    )
    assert await chart.evaluate(BLUE_PIXELS) > 100, "the curves are drawn"
    await shot(page, "arena")


async def test_schedules_page_adds_pauses_and_deletes_a_daily_schedule(
    server: Any, make_model: Any, page: Page
) -> None:
    model = await make_model()
    await sign_in(page, server.url, model["api_key"])
    await page.goto(f"{server.url}/console/models/{model['id']}")
    await page.get_by_role("link", name="Schedules").click()
    await expect(page.get_by_role("heading", name="Schedules of test model")).to_be_visible()
    await expect(page.get_by_label("Fri")).to_be_checked()
    await expect(page.get_by_label("Sat")).not_to_be_checked()
    form = page.locator("#add-schedule")
    await form.get_by_label("Time of day").fill("17:05")
    await form.get_by_label("Symbols").fill("AAPL")
    await form.get_by_role("button", name="Add schedule").click()
    await expect(page.locator("#schedules-notice")).to_contain_text("Added schedule 17:05 Mon-Fri")
    row = page.locator("#schedules-table tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator(".next-run")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d 17:05 New York"))
    await shot(page, "schedules")

    await row.get_by_role("button", name="Pause schedule 17:05 Mon-Fri").click()
    await expect(row.locator(".badge")).to_have_text("paused")

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await row.get_by_role("button", name="Delete schedule 17:05 Mon-Fri").click()
    await expect(page.locator("#no-schedules")).to_be_visible()
