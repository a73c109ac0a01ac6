"""The tickets page as a desk works it (issue 19): a ticket at its own address, unread counts
and the last message in the lists, agent names, internal notes and transfer requests."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from tests.after_hours.conftest import ADMIN, customer_writes
from tests.console.conftest import HTMX, sign_in
from tests.console.test_tickets import (  # noqa: F401 -- the `agents` fixture
    LISTS,
    PAGE,
    TUE_10,
    Work,
    fixture_agents,
    go_online,
    routed_ticket,
)


def unread_of(lists: str, ticket_id: str) -> int:
    """The unread badge of the ticket's line in the lists (0 without one)."""
    line = lists[lists.index(f'data-ticket-id="{ticket_id}"') :]
    line = line[: line.index("</li>")]
    match = re.search(r'data-unread="(\d+)"', line)
    return int(match.group(1)) if match else 0


async def test_a_ticket_opens_at_its_own_address(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    # A reload of the address the list pushed: the page with that ticket open.
    resp = await client.get(f"{PAGE}/{ticket_id}")
    html = await resp.text()
    assert resp.status == 200, html
    assert re.search(f'id="conversation"[^>]* data-ticket-id="{ticket_id}"', html)
    assert "Preciso de ajuda" in html
    # The list links are that address (and htmx pushes it).
    assert f'href="{PAGE}/{ticket_id}"' in html
    assert f'hx-push-url="{PAGE}/{ticket_id}"' in html
    # The old query form redirects there; the fragment's address without htmx too.
    old = await client.get(f"{PAGE}?ticket={ticket_id}", allow_redirects=False)
    assert (old.status, old.headers["Location"]) == (303, f"{PAGE}/{ticket_id}")
    bare = await client.get(f"/console/tickets/{ticket_id}", allow_redirects=False)
    assert (bare.status, bare.headers["Location"]) == (303, f"{PAGE}/{ticket_id}")
    # A ticket that is not there (or not theirs to see) is a 404, not an empty page.
    assert (await client.get(f"{PAGE}/T-nope")).status == 404
    assert (await client.get(f"{PAGE}/{'x' * 65}")).status == 404


async def test_unread_counts_the_customer_messages_since_the_agent_last_opened(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    assert unread_of(lists, ticket_id) == 1
    assert "Preciso de ajuda" in lists  # the last message, as a snippet
    # Opening it (the fragment) marks it seen, and the lists it brings along say so.
    opened = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert unread_of(opened, ticket_id) == 0
    assert unread_of(await (await client.get(LISTS, headers=HTMX)).text(), ticket_id) == 0
    for n, text in enumerate(("Alô?", "Tem alguém aí?")):
        at = TUE_10 + timedelta(seconds=10 + n)
        await customer_writes(client, at, wamid=f"wamid.U{n}", text=text)
    await work()
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    assert unread_of(lists, ticket_id) == 2
    assert "Tem alguém aí?" in lists
    # The agent's reply is no unread message, and becomes the snippet.
    key = opened.split('name="key" value="')[1].split('"')[0]
    await client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": csrf, "text": "Sim, estou aqui", "key": key},
        headers=HTMX,
    )
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    # Replying re-rendered the conversation for her: everything is seen now.
    assert unread_of(lists, ticket_id) == 0
    assert "↩ Sim, estou aqui" in lists
    # Per user: the manager, who never opened it, has all three customer messages unread.
    await sign_in(client, agents["mara"])
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    assert unread_of(lists, ticket_id) == 3
    # A reload of the deep link marks it seen too.
    assert (await client.get(f"{PAGE}/{ticket_id}")).status == 200
    assert unread_of(await (await client.get(LISTS, headers=HTMX)).text(), ticket_id) == 0


async def test_names_notes_and_a_transfer_request(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    # bia sees who serves it by name, asks for it, and adds a note.
    csrf = await sign_in(client, agents["bia"])
    html = await (await client.get(f"{PAGE}/{ticket_id}")).text()
    assert "Ana is serving this customer." in html
    assert "Request transfer" in html
    resp = await client.post(
        f"/console/tickets/{ticket_id}/notes",
        data={"csrf": csrf, "text": "Cliente VIP", "key": "n1"},
        headers=HTMX,
    )
    html = await resp.text()
    assert resp.status == 200, html
    assert re.search(r'class="note"[^>]*><span class="msg-label">Internal note · Bia', html)
    resp = await client.post(
        f"/console/tickets/{ticket_id}/transfer-request", data={"csrf": csrf}, headers=HTMX
    )
    html = await resp.text()
    assert resp.status == 200, html
    assert "You asked Ana to hand this customer over" in html
    again = await client.post(
        f"/console/tickets/{ticket_id}/transfer-request", data={"csrf": csrf}, headers=HTMX
    )
    assert again.status == 409
    # ana, the holder, sees the request and accepts it: the ticket is bia's.
    csrf = await sign_in(client, agents["ana"])
    html = await (await client.get(f"{PAGE}/{ticket_id}")).text()
    assert "<strong>Bia</strong> asks to take over this customer" in html
    request_id = html.split(f"/console/tickets/{ticket_id}/transfer-request/")[1].split('"')[0]
    bad = await client.post(
        f"/console/tickets/{ticket_id}/transfer-request/{request_id}",
        data={"csrf": csrf, "answer": "maybe"},
        headers=HTMX,
    )
    assert bad.status == 422
    # Accepting needs the requester online with a free slot.
    resp = await client.put("/api/v1/agents/bia/status", json={"status": "online"}, headers=ADMIN)
    assert resp.status == 200
    resp = await client.post(
        f"/console/tickets/{ticket_id}/transfer-request/{request_id}",
        data={"csrf": csrf, "answer": "accepted"},
        headers=HTMX,
    )
    assert resp.status == 200, await resp.text()
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["agent_id"] == "bia"
    # Notes are the desk's own: nothing was sent to the customer.
    assert "Cliente VIP" not in str(ticket["messages"])
