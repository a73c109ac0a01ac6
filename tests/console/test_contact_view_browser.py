"""The contact page (issue 19) in a real browser (Debian's headless Chromium, Playwright), at a
desktop's width and a phone's: from a search hit to the conversation, the search within it,
and the active message sent from the after-hours dialog on the same screen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import PNID, customer_writes, put_agent, setup_number
from tests.api.conftest import N1
from tests.api.test_contacts import seed
from tests.api.test_tickets import customer_writes as customer_writes_api
from tests.api.test_tickets import online
from tests.console.conftest import Desk, needs_chromium
from tests.console.test_browser import FOLLOW_UP, MON_20, STICKING_OUT, WABA, _page, _sign_in
from tests.graph_fake import FakeGraphAPI

pytestmark = needs_chromium

Work = Callable[[], Awaitable[int]]


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP]
    return make_settings(waba_id=WABA)


async def test_from_a_search_hit_to_an_active_message_on_the_same_screen(
    browser: Any,
    console_url: str,
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    graph: FakeGraphAPI,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.V1", name="Ana", text="Quero meu pedido")
    await work()  # the after-hours reply goes out: an automatic message
    headers = await put_agent(client, "bia", [PNID])
    resp = await client.post(
        f"/api/v1/numbers/{PNID}/contacts/5511987654321/notes",
        json={"text": "Pedido 42 atrasado"},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    token = headers["Authorization"].removeprefix("Bearer ")
    page = await _page(browser, viewport={"width": 1280, "height": 900})
    await _sign_in(page, console_url, token, "/console/contacts")
    await page.goto(console_url + "/console/contacts?q=ana")
    await page.get_by_role("link", name="Ana").click()
    await expect(page.locator("#resume")).to_have_attribute("data-case", "not_in_service")
    await expect(page.locator("#resume-notice")).to_contain_text("not in service")
    conversation = page.locator("#contact-conversation")
    await expect(conversation).to_contain_text("Quero meu pedido")
    await expect(conversation.locator("li.msg.automatic")).to_have_count(1)
    await expect(conversation.locator("li.note")).to_contain_text("Pedido 42 atrasado")
    await page.screenshot(path=str(tmp_path / "contact-desktop.png"), full_page=True)
    # The search keeps the message and the note, not the automatic reply.
    await page.get_by_label("Search this conversation").fill("PÉDIDO")
    await page.get_by_role("button", name="Search").click()
    await expect(conversation.locator("li")).to_have_count(2)
    await page.get_by_role("link", name="Send active message to Ana").click()
    dialog = page.locator("#am-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Template").select_option("follow_up|pt_BR")
    await dialog.get_by_label("{{1}}").fill("Ana")
    await dialog.get_by_role("button", name="Send").click()
    await expect(dialog).to_contain_text("Active message queued")
    await page.screenshot(path=str(tmp_path / "contact-dialog.png"))
    before = len(graph.messages)
    await work()
    [body] = graph.messages[before:]
    assert body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Ana"}]
    assert page.errors == []

    phone = await _page(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    await _sign_in(phone, console_url, token, f"/console/contacts/{PNID}/5511987654321")
    await expect(phone.locator("#resume")).to_be_visible()
    assert await phone.evaluate(STICKING_OUT, 390) == []
    await phone.screenshot(path=str(tmp_path / "contact-phone.png"), full_page=True)
    assert phone.errors == []
    print(f"screenshots: {tmp_path}")


async def test_every_case_fits_a_phone(
    browser: Any,
    console_url: str,
    client: TestClient[Any, Any],
    desk: Desk,
    clock: FixedClock,
    redis: aioredis.Redis,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    await online(client, "ana")
    await customer_writes_api(client, clock, 1)  # Ana serves 1 and 2 (two slots)
    await customer_writes_api(client, clock, 2)
    await customer_writes_api(client, clock, 3)  # waits in the queue
    await seed(redis, "5511987654321", "João", clock.now() - timedelta(days=91))
    base = f"/console/contacts/{N1}"
    cases = {
        "ana": [
            (f"{base}/5511900000001", "reply"),
            (f"{base}/5511900000003", "not_in_service"),
            (f"{base}/5511987654321", "no_history"),
        ],
        "mara": [(f"{base}/5511900000001", "served_by_another")],
    }
    for who, pages in cases.items():
        phone = await _page(
            browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        await _sign_in(phone, console_url, desk.token(who), "/console")
        for path, case in pages:
            await phone.goto(console_url + path)
            await expect(phone.locator("#resume")).to_have_attribute("data-case", case)
            assert await phone.evaluate(STICKING_OUT, 390) == [], path
            await phone.screenshot(path=str(tmp_path / f"phone-{case}.png"), full_page=True)
        assert phone.errors == []
    clock.advance(timedelta(hours=25))
    phone = await _page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    await _sign_in(phone, console_url, desk.token("ana"), "/console")
    await phone.goto(console_url + f"{base}/5511900000001")
    await expect(phone.locator("#resume")).to_have_attribute("data-case", "window_expired")
    assert await phone.evaluate(STICKING_OUT, 390) == []
    await phone.screenshot(path=str(tmp_path / "phone-window_expired.png"), full_page=True)
    print(f"screenshots: {tmp_path}")
