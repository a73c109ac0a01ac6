"""/api/v1/quick-replies: a user's categories and replies; validation; nobody else's."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.quick_replies import CATEGORY_NAME_MAX, REPLY_TEXT_MAX, REPLY_TITLE_MAX
from tests.api.conftest import N1, N2, Desk, put_agent

QR = "/api/v1/quick-replies/categories"


class Api:
    """Calls as one user."""

    def __init__(self, client: TestClient[Any, Any], desk: Desk, who: str) -> None:
        self.client, self.headers = client, desk.headers(who)

    async def call(
        self, method: str, path: str, status: int, body: Any = None, **params: str
    ) -> Any:
        resp = await self.client.request(
            method, path, json=body, headers=self.headers, params=params
        )
        assert resp.status == status, await resp.text()
        return None if status == 204 else await resp.json()

    async def category(self, name: str, status: int = 201) -> dict[str, Any]:
        body: dict[str, Any] = await self.call("POST", QR, status, {"name": name})
        return body

    async def reply(
        self, category_id: str, title: str, text: str, status: int = 201
    ) -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "POST", f"{QR}/{category_id}/replies", status, {"title": title, "text": text}
        )
        return body

    async def book(self, **params: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await self.call("GET", "/api/v1/quick-replies", 200, **params)
        )["items"]
        return items


def outline(book: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(c["name"], [r["title"] for r in c["replies"]]) for c in book]


async def test_categories_and_replies_crud(client: TestClient[Any, Any], desk: Desk) -> None:
    ana = Api(client, desk, "ana")
    greetings = await ana.category("Saudações")
    assert (greetings["name"], greetings["replies"]) == ("Saudações", [])
    billing = await ana.category("Cobrança")
    hello = await ana.reply(greetings["id"], "Bom dia", "Bom dia! Em que posso ajudar?")
    assert (hello["category_id"], hello["text"]) == (
        greetings["id"],
        "Bom dia! Em que posso ajudar?",
    )
    await ana.reply(greetings["id"], "Até logo", "Obrigado pelo contato.\nAté logo!")
    await ana.reply(billing["id"], "Boleto", "Segue o boleto.")
    # Categories by name, replies by title, accents and case ignored.
    assert outline(await ana.book()) == [
        ("Cobrança", ["Boleto"]),
        ("Saudações", ["Até logo", "Bom dia"]),
    ]
    # Read, rename, change a reply.
    got = await ana.call("GET", f"{QR}/{greetings['id']}", 200)
    assert [r["title"] for r in got["replies"]] == ["Até logo", "Bom dia"]
    renamed = await ana.call("PUT", f"{QR}/{greetings['id']}", 200, {"name": "Boas-vindas"})
    assert renamed["name"] == "Boas-vindas"
    path = f"{QR}/{greetings['id']}/replies/{hello['id']}"
    changed = await ana.call("PUT", path, 200, {"title": "Bom dia!", "text": "Olá!"})
    assert (changed["title"], changed["text"]) == ("Bom dia!", "Olá!")
    assert (await ana.call("GET", path, 200))["text"] == "Olá!"
    replies = await ana.call("GET", f"{QR}/{greetings['id']}/replies", 200)
    assert [r["title"] for r in replies["items"]] == ["Até logo", "Bom dia!"]
    # Delete a reply, then a category with its replies.
    await ana.call("DELETE", path, 204)
    await ana.call("DELETE", path, 404)
    await ana.call("GET", path, 404)
    await ana.call("DELETE", f"{QR}/{greetings['id']}", 204)
    await ana.call("GET", f"{QR}/{greetings['id']}/replies", 404)
    await ana.call("POST", f"{QR}/{greetings['id']}/replies", 404, {"title": "x", "text": "y"})
    assert outline(await ana.book()) == [("Cobrança", ["Boleto"])]
    # The deleted names are free again.
    again = await ana.category("Saudações")
    assert again["id"] != greetings["id"]


async def test_creating_twice_is_idempotent_and_clashes_are_409(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    ana = Api(client, desk, "ana")
    first = await ana.category("Saudações")
    assert (await ana.category("  SAUDACOES ", status=200))["id"] == first["id"]
    reply = await ana.reply(first["id"], "Bom dia", "Olá!")
    assert (await ana.reply(first["id"], "bom dia", "Olá!", status=200))["id"] == reply["id"]
    clash = await ana.call(
        "POST", f"{QR}/{first['id']}/replies", 409, {"title": "Bom dia", "text": "Oi"}
    )
    assert clash["error"]["code"] == "title_taken"
    other = await ana.category("Outra")
    taken = await ana.call("PUT", f"{QR}/{other['id']}", 409, {"name": "saudações"})
    assert taken["error"]["code"] == "name_taken"
    second = await ana.reply(first["id"], "Boa tarde", "Boa tarde!")
    path = f"{QR}/{first['id']}/replies/{second['id']}"
    taken = await ana.call("PUT", path, 409, {"title": "BOM DIA", "text": "x"})
    assert taken["error"]["code"] == "title_taken"
    # The same title in another category is fine.
    await ana.reply(other["id"], "Bom dia", "Oi")
    assert outline(await ana.book()) == [
        ("Outra", ["Bom dia"]),
        ("Saudações", ["Boa tarde", "Bom dia"]),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * (CATEGORY_NAME_MAX + 1)}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": 7}, "name"),
        ({"name": "ok", "color": "red"}, "color"),
    ],
)
async def test_invalid_category_is_422_naming_the_field(
    client: TestClient[Any, Any], desk: Desk, body: Any, field: str
) -> None:
    ana = Api(client, desk, "ana")
    error = (await ana.call("POST", QR, 422, body))["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert await ana.book() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x"}, "title"),
        ({"title": "x" * (REPLY_TITLE_MAX + 1), "text": "x"}, "title"),
        ({"title": "a\tb", "text": "x"}, "title"),
        ({"title": "t"}, "text"),
        ({"title": "t", "text": ""}, "text"),
        ({"title": "t", "text": " \n "}, "text"),
        ({"title": "t", "text": "x" * (REPLY_TEXT_MAX + 1)}, "text"),
    ],
)
async def test_invalid_reply_is_422_naming_the_field(
    client: TestClient[Any, Any], desk: Desk, body: Any, field: str
) -> None:
    ana = Api(client, desk, "ana")
    category = await ana.category("C")
    error = (await ana.call("POST", f"{QR}/{category['id']}/replies", 422, body))["error"]
    assert error["field"] == field
    reply = await ana.reply(category["id"], "ok", "ok")
    path = f"{QR}/{category['id']}/replies/{reply['id']}"
    assert (await ana.call("PUT", path, 422, body))["error"]["field"] == field
    assert outline(await ana.book()) == [("C", ["ok"])]


async def test_limits_are_inclusive(client: TestClient[Any, Any], desk: Desk) -> None:
    ana = Api(client, desk, "ana")
    category = await ana.category("ç" * CATEGORY_NAME_MAX)
    reply = await ana.reply(category["id"], "é" * REPLY_TITLE_MAX, "🙂" * REPLY_TEXT_MAX)
    assert len(reply["text"]) == REPLY_TEXT_MAX
    # What the storage script re-encodes on an update reads back as written.
    text = 'Olá 🙂 "aspas" \\ barra/ \u2028 tab\tfim\n'
    path = f"{QR}/{category['id']}/replies/{reply['id']}"
    assert (await ana.call("PUT", path, 200, {"title": "Çé", "text": text}))["text"] == text
    assert (await ana.call("GET", path, 200))["text"] == text
    renamed = await ana.call("PUT", f"{QR}/{category['id']}", 200, {"name": "Ação/「日本」"})
    assert (await ana.call("GET", f"{QR}/{category['id']}", 200))["name"] == renamed["name"]
    assert (await ana.call("POST", QR, 400, None))["error"]["code"] == "bad_request"


async def test_nobody_sees_or_changes_another_users_replies(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    ana, mara, admin = (
        Api(client, desk, "ana"),
        Api(client, desk, "mara"),
        Api(client, desk, "admin"),
    )
    mine = await ana.category("Da Ana")
    reply = await ana.reply(mine["id"], "Oi", "Oi, aqui é a Ana")
    # The same name elsewhere is another user's own category.
    theirs = await mara.category("Da Ana")
    assert theirs["id"] != mine["id"]
    cat = f"{QR}/{mine['id']}"
    path = f"{cat}/replies/{reply['id']}"
    for other in (mara, admin):
        await other.call("GET", cat, 404)
        await other.call("PUT", cat, 404, {"name": "Roubada"})
        await other.call("DELETE", cat, 404)
        await other.call("GET", f"{cat}/replies", 404)
        await other.call("POST", f"{cat}/replies", 404, {"title": "x", "text": "y"})
        await other.call("GET", path, 404)
        await other.call("PUT", path, 404, {"title": "x", "text": "y"})
        await other.call("DELETE", path, 404)
    assert outline(await mara.book()) == [("Da Ana", [])]
    assert await admin.book() == []
    assert outline(await ana.book()) == [("Da Ana", ["Oi"])]
    assert (await client.get("/api/v1/quick-replies")).status == 401


async def test_the_same_replies_on_every_number_the_user_serves(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    token = await put_agent(client, "carla", role="agent", numbers=[N1, N2])
    carla = Api(client, desk, "ana")
    carla.headers = {"Authorization": f"Bearer {token}"}
    category = await carla.category("Geral")
    await carla.reply(category["id"], "Oi", "Olá!")
    on_n1 = await carla.book(number=N1)
    assert on_n1 == await carla.book(number=N2) == await carla.book()
    assert outline(on_n1) == [("Geral", ["Oi"])]
    ana = Api(client, desk, "ana")
    assert (await ana.call("GET", "/api/v1/quick-replies", 403, number=N2))["error"]["code"] == (
        "forbidden"
    )
    await ana.call("GET", "/api/v1/quick-replies", 422, number="bad/id")
