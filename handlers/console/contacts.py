"""Console page of contact search: by name or phone, across the numbers the user serves.

The same search as `GET /api/v1/contacts?q=` (`Query.parse`, `ContactsStore.search`, and
`bot.services.contacts.hits` for who serves each contact), over the same numbers (admins:
every served number; `number=` narrows to one the user is attached to).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain import auth
from bot.domain.config import is_valid_id
from bot.domain.contacts import Query
from bot.services import contacts
from handlers.console.context import user_of
from handlers.console.render import render_page, visible_numbers

QUERY_MAX: Final = 100
LIMIT: Final = 50


async def page(request: web.Request) -> web.Response:
    """The search form and, with `q`, the matching contacts, latest interaction first."""
    caller = user_of(request).caller
    numbers = await visible_numbers(request)
    names = {n.phone_number_id: n.config.display_name or n.phone_number_id for n in numbers}
    q = (request.query.get("q") or "").strip()[:QUERY_MAX]
    only = request.query.get("number") or ""
    context: dict[str, Any] = {
        "q": q,
        "only": only,
        "names": names,
        "hits": None,
        "truncated": False,
        "error": None,
        "section": "contacts",
    }
    if not q:
        return await render_page(request, "contacts.html", context)
    query = Query.parse(q)
    if query is None:
        context["error"] = "Type a name or a phone number (letters or digits)."
        return await render_page(request, "contacts.html", context, status=422)
    if only and is_valid_id(only) and auth.can_read_number(caller, only):
        scope = [only]
    else:
        context["only"] = ""
        scope = list(names)
    stores = request.app[stores_key]
    result = await stores.contacts.search(scope, query, LIMIT)
    context["hits"] = [
        {
            "contact": hit.contact,
            "number": hit.number,
            "number_name": names.get(hit.number, hit.number),
            "window_open": hit.window_open,
            "has_history": hit.has_history,
            "served_by": hit.served_by,
        }
        for hit in await contacts.hits(request.app[deps_key], result.contacts)
    ]
    context["truncated"] = result.truncated
    return await render_page(request, "contacts.html", context)
