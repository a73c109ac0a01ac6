"""Contact search, quick replies and monitoring pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from tests.after_hours.conftest import (
    ADMIN,
    OTHER_PNID,
    PNID,
    customer_writes,
    put_agent,
    setup_number,
)
from tests.console.conftest import HTMX, csrf_of, sign_in

Work = Callable[[], Awaitable[int]]
TUE_10 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")


async def _customers(client: TestClient[Any, Any], clock: FixedClock, work: Work) -> None:
    clock.at = TUE_10
    await setup_number(client)
    await setup_number(client, OTHER_PNID)
    await customer_writes(client, TUE_10, wamid="wamid.S1", name="João Silva")
    await customer_writes(
        client, TUE_10, wamid="wamid.S2", name="Maria", wa_id="5511922223333", number=OTHER_PNID
    )
    await work()


async def test_contact_search_finds_by_name_and_phone_within_my_numbers(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await _customers(client, clock, work)
    headers = await put_agent(client, "ana", [PNID])
    await sign_in(client, headers["Authorization"].removeprefix("Bearer "))
    html = await (await client.get("/console/contacts", params={"q": "joao sil"})).text()
    assert "1 contact" in html
    assert "João Silva" in html
    html = await (await client.get("/console/contacts", params={"q": "11 98765-4321"})).text()
    assert "João Silva" in html
    # Maria wrote to a number ana does not serve.
    html = await (await client.get("/console/contacts", params={"q": "maria"})).text()
    assert "No contact matches" in html
    resp = await client.get("/console/contacts", params={"q": "--"})
    assert resp.status == 422
    assert 'aria-invalid="true"' in await resp.text()


async def test_an_admin_searches_every_number_or_one(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await _customers(client, clock, work)
    await sign_in(client, ADMIN_TOKEN)
    html = await (await client.get("/console/contacts", params={"q": "maria"})).text()
    assert "Maria" in html
    html = await (
        await client.get("/console/contacts", params={"q": "maria", "number": PNID})
    ).text()
    assert "No contact matches" in html


async def test_quick_replies_are_the_user_s_own(client: TestClient[Any, Any]) -> None:
    await setup_number(client)
    ana = (await put_agent(client, "ana", [PNID]))["Authorization"].removeprefix("Bearer ")
    bia = (await put_agent(client, "bia", [PNID]))["Authorization"].removeprefix("Bearer ")
    csrf = await sign_in(client, ana)
    resp = await client.post("/console/quick-replies/categories", data={"csrf": csrf, "name": ""})
    assert resp.status == 422
    assert 'id="cat-name-error"' in await resp.text()
    await client.post("/console/quick-replies/categories", data={"csrf": csrf, "name": "Vendas"})
    # The same name again answers the first (idempotent, as the API).
    await client.post("/console/quick-replies/categories", data={"csrf": csrf, "name": "vendas"})
    api = await (
        await client.get("/api/v1/quick-replies", headers={"Authorization": f"Bearer {ana}"})
    ).json()
    assert [c["name"] for c in api["items"]] == ["Vendas"]
    category = api["items"][0]["id"]
    resp = await client.post(
        f"/console/quick-replies/categories/{category}/replies",
        data={"csrf": csrf, "title": "x" * 31, "text": "Olá"},
    )
    assert resp.status == 422
    assert f'id="r-title-err-{category}"' in await resp.text()
    await sign_in(client, bia)
    assert "Vendas" not in await (await client.get("/console/quick-replies")).text()
    csrf = await sign_in(client, ana)
    page = await (await client.get("/console/quick-replies")).text()
    assert "Vendas" in page
    resp = await client.post(
        f"/console/quick-replies/categories/{category}/delete",
        data={"csrf": csrf_of(page)},
        allow_redirects=False,
    )
    assert resp.status == 303
    api = await (
        await client.get("/api/v1/quick-replies", headers={"Authorization": f"Bearer {ana}"})
    ).json()
    assert api["items"] == []


async def test_monitoring_shows_the_api_s_figures_to_managers_only(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    clock.at = TUE_10
    await setup_number(client)
    mara = (await put_agent(client, "mara", [PNID], role="manager"))["Authorization"]
    ana = (await put_agent(client, "ana", [PNID]))["Authorization"]
    await customer_writes(client, TUE_10, wamid="wamid.M1")
    await customer_writes(client, TUE_10, wamid="wamid.M2", wa_id="5511922223333", name="Bia")
    await work()
    api = await (
        await client.get(
            "/api/v1/monitoring", params={"number": PNID}, headers={"Authorization": mara}
        )
    ).json()
    waiting = api["numbers"][0]["figures"]["queue"]["tickets"]
    assert waiting == 2
    await sign_in(client, ana.removeprefix("Bearer "))
    assert (await client.get(f"/console/numbers/{PNID}/monitoring")).status == 403
    assert "/monitoring" not in await (await client.get(f"/console/numbers/{PNID}/settings")).text()
    await sign_in(client, mara.removeprefix("Bearer "))
    html = await (await client.get(f"/console/numbers/{PNID}/monitoring")).text()
    assert f'<span class="value" id="fig-queue">{waiting}</span>' in html
    assert "Queue over the day" in html
    # Both tickets arrived in the 10:00-10:15 quarter-hour: the chart's only bar, height 2.
    assert html.count('class="bar"') == 1
    assert ": 2</title>" in html
    figures = await (
        await client.get(f"/console/numbers/{PNID}/monitoring/figures", headers=HTMX)
    ).text()
    assert figures.startswith('<div id="monitoring-figures"')


async def test_history_lists_the_tickets_and_serves_their_transcript(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    clock.at = TUE_10
    await setup_number(client)
    ana = (await put_agent(client, "ana", [PNID]))["Authorization"].removeprefix("Bearer ")
    await customer_writes(client, TUE_10, wamid="wamid.H1", name="Carla", text="Quero trocar")
    await work()
    await sign_in(client, ana)
    html = await (await client.get(f"/console/numbers/{PNID}/history")).text()
    assert "Carla" in html
    ticket_id = html.split("/transcript.pdf")[0].rsplit("/console/tickets/", 1)[1]
    resp = await client.get(f"/console/tickets/{ticket_id}/transcript.pdf")
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert (await resp.read()).startswith(b"%PDF")
    html = await (
        await client.get(f"/console/numbers/{PNID}/history", params={"status": "closed"})
    ).text()
    assert "Carla" not in html
    # The API's validation, on the same field.
    resp = await client.get(f"/console/numbers/{PNID}/history", params={"from": "yesterday"})
    assert resp.status == 422
    assert 'data-error-for="from"' in await resp.text()
    api = await client.get(
        f"/api/v1/numbers/{PNID}/history", params={"from": "yesterday"},
        headers={"Authorization": f"Bearer {ana}"},
    )  # fmt: skip
    assert (await api.json())["error"]["field"] == "from"
