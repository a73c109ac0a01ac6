"""Console page of contact search: by name or phone, across the numbers the user serves.

The same search as `GET /api/v1/contacts?q=` (`Query.parse`, `ContactsStore.search`, the
API's own `served_by`), over the same numbers (admins: every served number; `number=`
narrows to one the user is attached to).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain import auth
from bot.domain.config import is_valid_id
from bot.domain.contacts import Query, has_history
from handlers.api.contacts import served_by
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
    now = request.app[clock_key].now()
    serving = await served_by(request, result.contacts)
    context["hits"] = [
        {
            "contact": c,
            "number": c.phone_number_id,
            "number_name": names.get(c.phone_number_id, c.phone_number_id),
            "window_open": c.window_open(now),
            "has_history": has_history(c, now),
            "served_by": serving.get(f"{c.phone_number_id}:{c.key}"),
        }
        for c in result.contacts
    ]
    context["truncated"] = result.truncated
    return await render_page(request, "contacts.html", context)
