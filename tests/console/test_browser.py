"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against the
app served on a localhost port, with a real Redis, the worker and the fake Graph API.

Each test is one thing a desk does: sign in and switch absence on, break an interval and read
the error beside it, send an active message from the after-hours list, watch a routed ticket
arrive; and the pages must work on a phone's width.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import (
    ADMIN,
    PNID,
    customer_writes,
    put_agent,
    setup_number,
)
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import needs_chromium
from tests.graph_fake import FakeGraphAPI

pytestmark = needs_chromium

Work = Callable[[], Awaitable[int]]
# Monday 2026-11-30 20:00 in São Paulo (closed); Tuesday 10:00 (open).
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
TUE_10 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
WABA = "waba-1"
FOLLOW_UP = {
    "name": "follow_up",
    "language": "pt_BR",
    "status": "APPROVED",
    "components": [{"type": "BODY", "text": "Olá {{1}}, vimos sua mensagem. Podemos ajudar?"}],
}
TIMEOUT_MS = 10_000
PAGES = ("settings", "after-hours", "tickets", "monitoring", "history")
# The visible elements whose right edge passes the viewport's width.
STICKING_OUT = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getClientRects().length)
  .filter(e => !e.closest('.tabs, dialog, .visually-hidden, table.responsive thead'))
  .filter(e => e.getBoundingClientRect().right > width + 0.5)
  .map(e => e.tagName + '.' + e.className)"""


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP]
    return make_settings(waba_id=WABA)


async def _page(browser: Any, **options: Any) -> Any:
    context = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


async def _sign_in(page: Any, base: str, token: str, path: str = "/console") -> None:
    await page.goto(base + path)
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}{path}*")


async def test_sign_in_then_the_absence_switch_changes_the_next_auto_reply(
    browser: Any, console_url: str, client: TestClient[Any, Any], clock: FixedClock
) -> None:
    from playwright.async_api import expect

    clock.at = MON_20
    await setup_number(
        client,
        absence={
            "message": "Ana está de férias.",
            "suggested_agent": {"name": "João", "phone": "+5511999990000"},
        },
    )
    page = await _page(browser)
    await _sign_in(page, console_url, ADMIN_TOKEN)
    await page.get_by_role("link", name="Settings").first.click()
    reply = page.locator("#next-reply")
    await expect(reply).to_contain_text("We are closed. We are back tomorrow at 09:00.")
    await page.get_by_text("Absence is off").click()
    await expect(page.locator("#section-absence")).to_contain_text("Absence is on")
    await expect(reply.locator('[data-outcome="absence"]').first).to_contain_text(
        "Ana está de férias."
    )
    await expect(reply).to_contain_text("João · +5511999990000")  # the contact card
    await expect(reply).not_to_contain_text("We are closed")
    stored = await (await client.get(f"/api/v1/numbers/{PNID}", headers=ADMIN)).json()
    assert stored["absence"]["enabled"] is True
    assert stored["absence"]["message"] == "Ana está de férias."
    # Saved, not just shown: a reload says the same.
    await page.reload()
    await expect(page.locator("#absence-switch")).to_be_checked()
    assert page.errors == []


async def test_an_invalid_interval_is_explained_next_to_its_field(
    browser: Any, console_url: str, client: TestClient[Any, Any]
) -> None:
    from playwright.async_api import expect

    await setup_number(client)
    page = await _page(browser)
    await _sign_in(page, console_url, ADMIN_TOKEN, f"/console/numbers/{PNID}/settings")
    end = page.get_by_label("Monday interval 1 to")
    await end.fill("09:00")
    await page.get_by_role("button", name="Save service hours").click()
    error = page.locator('[data-error-for="service_hours.weekly.mon[0].end"]')
    await expect(error).to_contain_text("End must differ from start")
    # Beside its input, which is marked invalid, described by it, and has the focus.
    assert await error.evaluate(
        "e => e.closest('.interval').querySelector('input[name$=\".end\"]').id"
    ) == await end.get_attribute("id")
    await expect(end).to_have_attribute("aria-invalid", "true")
    await expect(end).to_have_attribute(
        "aria-describedby", "err-service_hours-weekly-mon-0-end weekly-hint"
    )
    await expect(end).to_be_focused()
    await expect(page.locator("#section-hours .form-error")).to_contain_text("Not saved.")
    stored = await (await client.get(f"/api/v1/numbers/{PNID}", headers=ADMIN)).json()
    assert stored["service_hours"]["weekly"]["mon"] == [{"start": "09:00", "end": "18:00"}]
    # Fixed, and a second interval added with the keyboard-reachable button: saved.
    await end.fill("12:00")
    await page.get_by_role("button", name="Add an interval on Monday").click()
    await page.get_by_label("Monday new interval from").fill("13:00")
    await page.get_by_label("Monday new interval to").fill("18:00")
    await page.get_by_role("button", name="Save service hours").click()
    await expect(page.locator("#section-hours .saved")).to_contain_text("Saved.")
    stored = await (await client.get(f"/api/v1/numbers/{PNID}", headers=ADMIN)).json()
    assert stored["service_hours"]["weekly"]["mon"] == [
        {"start": "09:00", "end": "12:00"},
        {"start": "13:00", "end": "18:00"},
    ]
    assert page.errors == []


async def test_an_active_message_from_the_after_hours_list_flips_message_sent(
    browser: Any,
    console_url: str,
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    graph: FakeGraphAPI,
) -> None:
    from playwright.async_api import expect

    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.B1", name="Ana")
    await work()
    headers = await put_agent(client, "bia", [PNID])
    page = await _page(browser)
    await _sign_in(
        page, console_url, headers["Authorization"].removeprefix("Bearer "),
        f"/console/numbers/{PNID}/after-hours",
    )  # fmt: skip
    sent = page.locator("td.message-sent")
    await expect(sent).to_have_attribute("data-sent", "no")
    await page.get_by_role("link", name="Send active message to Ana").click()
    dialog = page.locator("#am-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Template").select_option("follow_up|pt_BR")
    variable = dialog.get_by_label("{{1}}")
    await variable.fill("Ana")
    await dialog.get_by_role("button", name="Send").click()
    await expect(dialog).to_contain_text("Message sent")
    # The row behind the dialog already says so, without a reload.
    await expect(sent).to_have_attribute("data-sent", "yes")
    await expect(sent).to_contain_text("follow_up")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    before = len(graph.messages)
    await work()
    [body] = graph.messages[before:]
    assert body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Ana"}]
    assert page.errors == []


async def test_a_routed_ticket_appears_without_reloading(
    browser: Any, console_url: str, client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    from playwright.async_api import expect

    clock.at = TUE_10
    await setup_number(client)
    headers = await put_agent(client, "ana", [PNID])
    page = await _page(browser)
    await _sign_in(
        page, console_url, headers["Authorization"].removeprefix("Bearer "),
        f"/console/numbers/{PNID}/tickets",
    )  # fmt: skip
    await page.get_by_text("Online", exact=True).click()
    await expect(page.locator("#status-online")).to_be_checked()
    await expect(page.locator("#mine-empty")).to_be_visible()
    await expect(page.locator("#live-state")).to_have_text("Updates live.")
    await page.evaluate("window.__sameDocument = true")
    await customer_writes(client, TUE_10, wamid="wamid.B2", name="Carla", text="Meu pedido?")
    await work()
    mine = page.locator("#mine [data-ticket-id]")
    # The event stream, not the 5-second poll, brings it: well within 3 seconds.
    await expect(mine).to_have_count(1, timeout=3_000)
    await expect(mine).to_contain_text("Carla")
    await expect(page.locator("#flash")).to_contain_text("New ticket: Carla")
    assert await page.evaluate("window.__sameDocument") is True
    # Open it and reply, still on the same page.
    await mine.get_by_role("link").click()
    await expect(page.locator("#ticket-detail")).to_contain_text("Meu pedido?")
    await page.get_by_label("Reply", exact=True).fill("Já vejo para você!")
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.locator("#ticket-detail .msg.out")).to_contain_text("Já vejo para você!")
    assert page.errors == []


async def test_pages_fit_a_phone_and_start_with_a_skip_link(
    browser: Any, console_url: str, client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    from playwright.async_api import expect

    clock.at = MON_20 + timedelta(seconds=5)
    await setup_number(client)
    await customer_writes(client, MON_20, wamid="wamid.B3", name="Ana")
    await work()
    page = await _page(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    await _sign_in(page, console_url, ADMIN_TOKEN)
    paths = [f"/console/numbers/{PNID}/{p}" for p in PAGES] + [
        "/console",
        "/console/contacts?q=ana",
        "/console/quick-replies",
    ]
    for path in paths:
        await page.goto(console_url + path)
        # Nothing visible sticks out on the right (it would be cut off, or scroll sideways);
        # the tab bar scrolls sideways on purpose, and hidden labels are for screen readers.
        sticking_out = await page.evaluate(STICKING_OUT, 390)
        assert sticking_out == [], path
    # Keyboard first: the first Tab lands on "Skip to content".
    await page.goto(console_url + "/console")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    assert page.errors == []
