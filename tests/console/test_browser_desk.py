"""The tickets page in a real browser (issue 19): a customer's message reaches the open
conversation live, the agent's reply shows its delivery ticks as Meta's status webhooks
arrive, and on a phone a tapped ticket comes into view. Webhooks are signed and posted to the
live server the browser uses, as Meta would."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from bot.deps import open_deps
from bot.domain.clock import FixedClock
from bot.settings import Settings
from bot.simulate import build_payload
from tests.after_hours.conftest import ADMIN, CUSTOMER, PNID, put_agent, setup_number
from tests.console.conftest import needs_chromium
from tests.console.test_browser import TUE_10, _page, _sign_in
from tests.webhooks import signed_headers

pytestmark = needs_chromium

Work = Callable[[], Awaitable[int]]
# Generous: two cores shared with other test runs. The live path itself is a 1 s poll.
LIVE_MS = 2_000


async def post_signed(base: str, payload: dict[str, Any]) -> None:
    """POST a webhook to the live server, signed with the app secret."""
    body = json.dumps(payload).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/webhook", data=body, headers=signed_headers(body)) as resp,
    ):
        assert resp.status == 200, await resp.text()


def customer_message(at: datetime, wamid: str, text: str) -> dict[str, Any]:
    return build_payload(
        phone_number_id=PNID,
        wa_id=CUSTOMER,
        name="Carla",
        text=text,
        timestamp=int(at.timestamp()),
        message_id=wamid,
    )


def delivery_status(message_id: str, status: str, at: datetime) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "statuses": [
            {
                "id": message_id,
                "status": status,
                "timestamp": str(int(at.timestamp())),
                "recipient_id": CUSTOMER,
            }
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


async def ticket_of_ana(
    client: TestClient[Any, Any], console_url: str, clock: FixedClock, work: Work
) -> tuple[str, str]:
    """ana online on the number and a ticket of hers: her token and the ticket's id."""
    clock.at = TUE_10
    await setup_number(client)
    headers = await put_agent(client, "ana", [PNID])
    resp = await client.put("/api/v1/agents/ana/status", json={"status": "online"}, headers=ADMIN)
    assert resp.status == 200
    await post_signed(console_url, customer_message(TUE_10, "wamid.L1", "Meu pedido?"))
    await work()
    [item] = (await (await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)).json())[
        "items"
    ]
    assert item["agent_id"] == "ana"
    return headers["Authorization"].removeprefix("Bearer "), item["id"]


async def test_a_customer_message_and_delivery_ticks_reach_the_open_conversation(
    browser: Any,
    console_url: str,
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    settings: Settings,
) -> None:
    from playwright.async_api import expect

    token, ticket_id = await ticket_of_ana(client, console_url, clock, work)
    page = await _page(browser)
    await _sign_in(page, console_url, token, f"/console/numbers/{PNID}/tickets/{ticket_id}")
    conversation = page.locator("#conversation")
    await expect(conversation).to_contain_text("Meu pedido?")
    await expect(page.locator("#live-state")).to_have_text("Updates live.")
    await page.evaluate("window.__sameDocument = true")
    await page.get_by_label("Reply", exact=True).fill("Um momento")  # a draft being typed

    at = TUE_10 + timedelta(seconds=30)
    clock.at = at
    await post_signed(console_url, customer_message(at, "wamid.L2", "Ainda está aí?"))
    await work()
    await expect(conversation).to_contain_text("Ainda está aí?", timeout=LIVE_MS)
    assert await page.evaluate("window.__sameDocument") is True
    await expect(page.get_by_label("Reply", exact=True)).to_have_value("Um momento")

    await page.get_by_role("button", name="Send reply").click()
    reply = page.locator("#conversation .msg.out", has_text="Um momento")
    await expect(reply).to_be_visible()
    reply_id = await reply.get_attribute("data-message-id")
    assert reply_id is not None
    await work()  # the outbox sends it to Meta (the fake)
    tick = reply.locator(".tick")
    async with open_deps(settings, clock=clock) as deps:
        meta_id = await deps.stores.sends.outcome(reply_id)
    assert meta_id
    for n, status in enumerate(("sent", "delivered", "read")):
        await post_signed(console_url, delivery_status(meta_id, status, at + timedelta(seconds=n)))
        await work()
        await expect(tick).to_have_attribute("data-status", status, timeout=LIVE_MS)
    await expect(tick).to_have_attribute("title", "Read")
    await expect(tick).to_have_text("✓✓Read")  # the mark, and its words for screen readers
    assert await page.evaluate("window.__sameDocument") is True
    assert page.errors == []


async def test_tapping_a_ticket_on_a_phone_brings_the_conversation_into_view(
    browser: Any, console_url: str, client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    from playwright.async_api import expect

    token, ticket_id = await ticket_of_ana(client, console_url, clock, work)
    page = await _page(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    await _sign_in(page, console_url, token, f"/console/numbers/{PNID}/tickets")
    conversation = page.locator("#conversation")
    await page.locator(f'#mine [data-ticket-id="{ticket_id}"] a').tap()
    await expect(conversation).to_contain_text("Meu pedido?")
    await expect(conversation).to_be_in_viewport()
    # Scrolled to the ticket (as far as the page goes), not its edge peeking in under the
    # lists: its top in the upper 40% of the screen (712 px down without the scroll).
    top = await page.locator("#ticket-detail").evaluate("e => e.getBoundingClientRect().top")
    assert -1 <= top <= 844 * 0.4, top
    # The address names the ticket: a reload keeps it open.
    await expect(page).to_have_url(f"{console_url}/console/numbers/{PNID}/tickets/{ticket_id}")
    await page.reload()
    await expect(conversation).to_contain_text("Meu pedido?")
    assert page.errors == []
