"""Screenshots of every console page, at a desktop's and a phone's width, for the README.

Not a check: it writes docs/screenshots/*.png, so it is not collected with the suite (its
name does not start with `test_`) and runs only when asked: `make screenshots`, i.e.
`pytest tests/console/screenshots.py`. It builds a small desk first: two numbers, three
agents, customers after hours and in service hours, tickets, quick replies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import ADMIN, customer_writes, put_agent
from tests.api.conftest import SETTINGS
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import needs_chromium
from tests.graph_fake import FakeGraphAPI

pytestmark = needs_chromium

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
N1, N2 = "106540352242922", "206540352242922"
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
TUE_10 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
WABA = "waba-1"
TEMPLATES = [
    {
        "name": "follow_up",
        "language": "pt_BR",
        "status": "APPROVED",
        "components": [
            {"type": "BODY", "text": "Olá {{1}}, vimos sua mensagem de {{2}}. Podemos ajudar?"}
        ],
    },
    {
        "name": "back_in_stock",
        "language": "pt_BR",
        "status": "APPROVED",
        "components": [{"type": "BODY", "text": "{{1}}, o produto chegou!"}],
    },
]
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
Work = Callable[[], Awaitable[int]]


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = TEMPLATES
    return make_settings(waba_id=WABA)


async def _desk(client: TestClient[Any, Any], clock: FixedClock, work: Work) -> dict[str, str]:
    body = {**SETTINGS, "language": "en", "after_hours": {**SETTINGS["after_hours"]}}
    body["service_hours"] = {
        **SETTINGS["service_hours"],
        "weekly": {
            d: [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
            for d in ("mon", "tue", "wed", "thu", "fri")
        }
        | {"sat": [{"start": "09:00", "end": "13:00"}]},
    }
    assert (await client.put(f"/api/v1/numbers/{N1}", json=body, headers=ADMIN)).status == 201
    other = {"display_name": "Loja Norte", "timezone": "America/Manaus", "language": "pt-BR",
             "service_hours": {"always_open": True}}  # fmt: skip
    assert (await client.put(f"/api/v1/numbers/{N2}", json=other, headers=ADMIN)).status == 201
    tokens = {}
    for agent_id, role in (("ana", "agent"), ("bruno", "agent"), ("mara", "manager")):
        headers = await put_agent(client, agent_id, [N1], role=role)
        tokens[agent_id] = headers["Authorization"].removeprefix("Bearer ")
    clock.at = MON_20 + timedelta(hours=1)
    for i, (name, wa_id) in enumerate(
        (
            ("Ana Souza", "5511987654321"),
            ("Carlos Lima", "5511911112222"),
            ("Júlia Castro", "5521933334444"),
        )
    ):
        await customer_writes(
            client,
            MON_20 + timedelta(minutes=17 * i),
            wamid=f"wamid.N{i}",
            name=name,
            wa_id=wa_id,
            number=N1,
        )
    await customer_writes(
        client,
        MON_20 + timedelta(minutes=40),
        wamid="wamid.N9",
        name="Carlos Lima",
        wa_id="5511911112222",
        number=N1,
        button="notify_next_service_hour",
        text="Notify me",
    )
    await work()
    rows = (
        await (await client.get(f"/api/v1/numbers/{N1}/after-hours-contacts", headers=ADMIN)).json()
    )["items"]
    await client.post(
        f"/api/v1/numbers/{N1}/after-hours-contacts/{rows[-1]['id']}/active-message",
        json={"template": "follow_up", "language": "pt_BR", "variables": ["Ana", "ontem"]},
        headers={"Authorization": f"Bearer {tokens['ana']}"},
    )
    clock.at = TUE_10
    for agent_id in ("ana", "mara"):
        await client.put(
            f"/api/v1/agents/{agent_id}/status",
            json={"status": "online"},
            headers={"Authorization": f"Bearer {tokens[agent_id]}"},
        )
    for i, (name, wa_id, text) in enumerate(
        (
            ("Pedro Alves", "5511955556666", "Boa tarde, meu pedido 4521 ainda não chegou"),
            ("Beatriz Rocha", "5511977778888", "Vocês têm o modelo azul em estoque?"),
            ("Rafael Dias", "5511944445555", "Quero trocar um produto"),
            ("Lívia Nunes", "5511966667777", "Qual o horário de sábado?"),
            ("Marcos Teixeira", "5511988889999", "Preciso da segunda via do boleto"),
        )
    ):
        await customer_writes(
            client,
            TUE_10 - timedelta(minutes=40 - 7 * i),
            wamid=f"wamid.T{i}",
            name=name,
            wa_id=wa_id,
            text=text,
            number=N1,
        )
    await work()
    mara = {"Authorization": f"Bearer {tokens['mara']}"}
    cats = await client.post(
        "/api/v1/quick-replies/categories", json={"name": "Saudações"}, headers=mara
    )
    cat = (await cats.json())["id"]
    for title, text in (
        ("Bom dia", "Bom dia! Em que posso ajudar?"),
        ("Aguarde", "Um momento, por favor: já verifico para você."),
    ):
        await client.post(
            f"/api/v1/quick-replies/categories/{cat}/replies",
            json={"title": title, "text": text},
            headers=mara,
        )
    cats = await client.post(
        "/api/v1/quick-replies/categories", json={"name": "Entregas"}, headers=mara
    )
    await client.post(
        f"/api/v1/quick-replies/categories/{(await cats.json())['id']}/replies",
        json={"title": "Prazo", "text": "O prazo de entrega é de 3 a 5 dias úteis."},
        headers=mara,
    )
    tickets = (
        await (await client.get(f"/api/v1/numbers/{N1}/tickets?status=open", headers=ADMIN)).json()
    )["items"]
    mine = next(t for t in tickets if t["agent_id"] == "mara")
    await client.post(
        f"/api/v1/tickets/{mine['id']}/messages",
        json={"text": "Olá! Vou verificar o pedido 4521 agora."},
        headers=mara,
    )
    clock.at = TUE_10 + timedelta(minutes=3)
    tokens["ticket"] = mine["id"]
    return tokens


async def _shoot(page: Any, name: str, size: str, *, full: bool = False) -> None:
    await page.wait_for_timeout(150)
    await page.screenshot(path=str(OUT / f"{name}-{size}.png"), full_page=full)


async def test_screenshots(
    browser: Any, console_url: str, client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tokens = await _desk(client, clock, work)
    for size, options in SIZES.items():
        context = await browser.new_context(**options)
        page = await context.new_page()
        await page.goto(f"{console_url}/console/sign-in")
        await _shoot(page, "sign-in", size)
        await page.get_by_label("API token").fill(ADMIN_TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{console_url}/console")
        await _shoot(page, "numbers", size)
        await page.goto(f"{console_url}/console/sign-in")
        await context.clear_cookies()
        await page.goto(f"{console_url}/console/sign-in")
        await page.get_by_label("API token").fill(tokens["mara"])
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{console_url}/console")
        base = f"{console_url}/console/numbers/{N1}"
        await page.goto(f"{base}/settings")
        await _shoot(page, "settings", size)
        await page.get_by_label("Monday interval 2 from").fill("11:30")
        await page.get_by_role("button", name="Save service hours").click()
        await page.locator('[data-error-for^="service_hours.weekly.mon"]').wait_for()
        await page.locator("#section-hours .form-error").scroll_into_view_if_needed()
        await _shoot(page, "settings-error", size)
        await page.goto(f"{base}/settings#section-absence")
        await page.locator("#section-absence").scroll_into_view_if_needed()
        await _shoot(page, "settings-absence", size)
        await page.goto(f"{base}/after-hours")
        await _shoot(page, "after-hours", size)
        await page.get_by_role("link", name="Send active message to Júlia Castro").click()
        await page.locator("#am-dialog").wait_for()
        await page.locator("#am-template").select_option("follow_up|pt_BR")
        await page.locator("#am-var-0").wait_for()
        await page.locator("#am-var-0").fill("Júlia")
        await page.locator("#am-var-1").fill("ontem à noite")
        await _shoot(page, "active-message", size)
        await page.goto(f"{base}/tickets/{tokens['ticket']}")
        await page.locator("#live-state").wait_for()
        await _shoot(page, "tickets", size)
        await page.goto(f"{base}/monitoring")
        await _shoot(page, "monitoring", size)
        await page.goto(f"{console_url}/console/contacts?q=ana")
        await _shoot(page, "contacts", size)
        await page.goto(f"{console_url}/console/quick-replies")
        await _shoot(page, "quick-replies", size)
        await context.close()
