"""Console page of one contact (issue 19): their 90-day conversation across tickets, a search
within it, and the way to resume it (bot.services.contact_view: the API's view and cases).

The resume component per case: `reply` posts to the Tickets page's reply
(`/console/tickets/{id}/reply`, `bot.services.tickets.reply`); `window_expired`,
`not_in_service` and `no_history` open the after-hours send-active-message dialog (its
template, `after_hours/_message_form.html`, and its rules: `contact_view.send_active_message`);
`served_by_another` names the agent and posts the Tickets page's transfer request.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from bot.appkeys import deps_key
from bot.domain.config import invalid_input, is_valid_id
from bot.domain.contact_view import ContactConversation
from bot.domain.errors import ConflictError, InvalidInputError, NotFoundError
from bot.services import contact_view
from bot.services.after_hours import ActiveMessageInput
from handlers.console.after_hours import _choice, _variables, dialog_context
from handlers.console.context import is_htmx, user_of
from handlers.console.render import render_fragment, render_page

QUERY_MAX: Final = 100
WA_ID_MAX: Final = 128


def _path(request: web.Request) -> tuple[str, str]:
    number = request.match_info["number"]
    wa_id = request.match_info["wa_id"]
    if not is_valid_id(number) or not wa_id or len(wa_id) > WA_ID_MAX or not wa_id.isprintable():
        raise NotFoundError("no such contact")
    return number, wa_id


def page_url(number: str, wa_id: str) -> str:
    return f"/console/contacts/{number}/{wa_id}"


async def _view(request: web.Request, q: str | None = None) -> ContactConversation:
    number, wa_id = _path(request)
    return await contact_view.conversation(
        request.app[deps_key], user_of(request).caller, number, wa_id, q=q
    )


async def page(request: web.Request) -> web.Response:
    """The contact's conversation (times in the number's time zone), `q` filtering it, and the
    resume component of its case. 403 outside the user's numbers, 404 for an unknown contact."""
    q = (request.query.get("q") or "").strip()[:QUERY_MAX] or None
    view = await _view(request, q)
    stored = await request.app[deps_key].stores.numbers.get(view.number)
    assert stored is not None  # the service answered 404 otherwise
    authors = sorted({i.author for i in view.items if i.author is not None})
    agents = await request.app[deps_key].stores.agents.get_many(authors)
    context: dict[str, Any] = {
        "view": view,
        "names": {a.id: a.name for a in agents},
        "zone": stored.config.zone,
        "number": stored,
        "q": q or "",
        "base_url": page_url(view.number, request.match_info["wa_id"]),
        "request_sent": request.query.get("sent") == "1",
        "section": "contacts",
    }
    return await render_page(request, "contact_view.html", context)


def _item(view: ContactConversation) -> dict[str, str | None]:
    """What the after-hours dialog shows of its addressee."""
    contact = view.contact
    return {"name": contact.name or "(No name)", "phone": contact.phone, "wa_id": contact.wa_id}


async def _form_context(
    request: web.Request, view: ContactConversation, **options: Any
) -> dict[str, Any]:
    action = page_url(view.number, request.match_info["wa_id"]) + "/message"
    return await dialog_context(request, _item(view), action, **options)


async def message_form(request: web.Request) -> web.Response:
    """The send-active-message dialog for this contact, the number already filled in (a page
    of its own without JavaScript); `?template=name|language` shows its variables."""
    view = await _view(request)
    context = await _form_context(
        request, view, choice=request.query.get("template", ""), variables=[]
    )
    if is_htmx(request):
        return render_fragment(request, "after_hours/_message_form.html", context)
    stored = await request.app[deps_key].stores.numbers.get(view.number)
    context.update(
        number=stored, section="contacts", back=page_url(view.number, request.match_info["wa_id"])
    )
    return await render_page(request, "contact_message.html", context)


async def send_message(request: web.Request) -> web.Response:
    """Queue the active message (`contact_view.send_active_message`): the confirmation, or the
    form again with the 422 next to its field, or the 409 `already_sent` offering to send
    anyway, as the after-hours dialog does."""
    view = await _view(request)
    form = await request.post()
    choice = str(form.get("template", ""))
    variables = _variables(form)
    force = form.get("force") == "on"
    name, language = _choice(choice)
    again: dict[str, Any] = {"choice": choice, "variables": variables, "force": force}
    try:
        body = ActiveMessageInput.model_validate(
            {"template": name, "language": language, "variables": variables, "force": force}
        )
        await contact_view.send_active_message(
            request.app[deps_key], user_of(request).caller, view.number, view.contact.key, body
        )
    except ValidationError as exc:
        error = invalid_input(exc)
        field = "template" if error.field in ("template", "language") else error.field or "template"
        context = await _form_context(
            request, view, **again, errors={field: error.message}, message=error.message
        )
        return render_fragment(request, "after_hours/_message_form.html", context, status=422)
    except InvalidInputError as exc:
        field = exc.field or "template"
        context = await _form_context(
            request, view, **again, errors={field: exc.message}, message=exc.message
        )
        return render_fragment(request, "after_hours/_message_form.html", context, status=422)
    except ConflictError as exc:
        context = await _form_context(request, view, **again, message=exc.message, conflict=True)
        return render_fragment(request, "after_hours/_message_form.html", context, status=409)
    url = page_url(view.number, request.match_info["wa_id"])
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"{url}?sent=1")
    return render_fragment(request, "contact_sent.html", {"url": url, "name": _item(view)["name"]})
