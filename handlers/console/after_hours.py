"""Console page of a number's after-hours contacts: the 7-day table, and the dialog that sends
an active message (pick a template, fill its variables, send).

The list and the send are the API's use cases (`bot.services.after_hours.contacts` and
`send_active_message`, with `bot.services.templates`): the same input model
(`ActiveMessageInput`), template lookup and check, 24-hour claim, `send_reply` job and row
update. So the 422 names the same field (`template`, `variables`, `variables[i]`) and a
repeat within 24 hours is the same 409 `already_sent`, with the same `force`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.appkeys import deps_key
from bot.domain.config import StoredNumber, invalid_input
from bot.domain.errors import ConflictError, InvalidInputError
from bot.services import after_hours, templates
from bot.services.after_hours import REQUESTED_RETURNS, ActiveMessageInput, AfterHoursContact
from bot.services.templates import Template
from handlers.console.context import is_htmx, user_of
from handlers.console.numbers import readable_number
from handlers.console.render import render_fragment, render_page

_VARIABLE = re.compile(r"^variables\[(\d{1,3})\]$")


async def _templates(request: web.Request) -> list[Template]:
    """Every template the API lists: the Graph API's (cached an hour), then registered ones."""
    return (await templates.available(request.app[deps_key])).templates


def _sendable(template: Template) -> bool:
    try:
        template.check(["x"] * template.variables)
    except InvalidInputError:
        return False
    return True


async def page(request: web.Request) -> web.Response:
    """The number's after-hours contacts of the last 7 days, newest first, with the API's
    filters (`requested_return`, `message_sent`); unknown filter values are ignored."""
    stored = await readable_number(request)
    raw_requested = request.query.get("requested_return") or None
    requested = next((r for r in REQUESTED_RETURNS if r == raw_requested), None)
    raw_sent = (request.query.get("message_sent") or "").lower()
    sent = {"true": True, "false": False}.get(raw_sent)
    zone = stored.config.zone
    items = await after_hours.contacts(
        request.app[deps_key],
        user_of(request).caller,
        stored.phone_number_id,
        requested_return=requested,
        message_sent=sent,
    )
    context = {
        "number": stored,
        "items": items,
        "zone": zone,
        "requested": requested or "",
        "sent": raw_sent if sent is not None else "",
        "requested_returns": REQUESTED_RETURNS,
        "section": "after-hours",
    }
    if is_htmx(request) and request.headers.get("HX-Target") == "ah-table":
        return render_fragment(request, "after_hours/_table.html", context)
    return await render_page(request, "after_hours/page.html", context)


async def _row(request: web.Request, stored: StoredNumber) -> AfterHoursContact:
    caller = user_of(request).caller
    return await after_hours.contact(
        request.app[deps_key], caller, stored, request.match_info["id"]
    )


def _choice(value: str) -> tuple[str, str]:
    name, _, language = value.partition("|")
    return name, language


async def dialog_context(
    request: web.Request,
    item: object,
    action: str,
    *,
    choice: str,
    variables: list[str],
    force: bool = False,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    conflict: bool = False,
) -> dict[str, Any]:
    """The send-active-message dialog's context (after_hours/_message_form.html) for an
    addressee `item` (its name, phone and wa_id), posting to `action`: one dialog for the
    after-hours list and the contact view."""
    templates = await _templates(request)
    name, language = _choice(choice)
    chosen = next((t for t in templates if (t.name, t.language) == (name, language)), None)
    count = chosen.variables if chosen is not None else 0
    return {
        "item": item,
        "templates": [(t, _sendable(t)) for t in templates],
        "chosen": chosen,
        "choice": choice if chosen is not None else "",
        "variables": (variables + [""] * count)[:count],
        "force": force,
        "errors": errors or {},
        "message": message,
        "conflict": conflict,
        "action": action,
    }


async def _form_context(
    request: web.Request, item: AfterHoursContact, **options: Any
) -> dict[str, Any]:
    number = request.match_info["phone_number_id"]
    action = f"/console/numbers/{number}/after-hours/{item.id}/message"
    return await dialog_context(request, item, action, **options)


async def message_form(request: web.Request) -> web.Response:
    """The send-active-message dialog for one row (a page of its own without JavaScript);
    `?template=name|language` picks a template and shows its variables."""
    stored = await readable_number(request)
    item = await _row(request, stored)
    context = await _form_context(
        request, item, choice=request.query.get("template", ""), variables=[]
    )
    if is_htmx(request):
        return render_fragment(request, "after_hours/_message_form.html", context)
    context.update(number=stored, section="after-hours")
    return await render_page(request, "after_hours/message.html", context)


def _variables(form: Any) -> list[str]:
    found: dict[int, str] = {}
    for key, value in form.items():
        match = _VARIABLE.match(key)
        if match is not None and isinstance(value, str) and int(match[1]) < 100:
            found[int(match[1])] = value.strip()
    return [found.get(i, "") for i in range(max(found) + 1)] if found else []


async def send_message(request: web.Request) -> web.Response:
    """Queue the active message as the API does: 200 with the dialog's confirmation and the
    row updated (`message sent`), or the form again with the 422 next to its field, or the
    409 `already_sent` offering to send anyway."""
    stored = await readable_number(request)
    number = stored.phone_number_id
    item = await _row(request, stored)
    form = await request.post()
    choice = str(form.get("template", ""))
    variables = _variables(form)
    force = form.get("force") == "on"
    name, language = _choice(choice)
    try:
        body = ActiveMessageInput.model_validate(
            {"template": name, "language": language, "variables": variables, "force": force}
        )
    except ValidationError as exc:
        error = invalid_input(exc)
        field = "template" if error.field in ("template", "language") else error.field or "template"
        return await _form_again(request, item, choice, variables, force, field, error.message)
    try:
        updated = await after_hours.send_active_message(
            request.app[deps_key], user_of(request).caller, number, item.id, body
        )
    except InvalidInputError as exc:
        return await _form_again(
            request, item, choice, variables, force, exc.field or "template", exc.message
        )
    except ConflictError as exc:
        context = await _form_context(
            request, item, choice=choice, variables=variables, force=force,
            message=exc.message, conflict=True,
        )  # fmt: skip
        return _form_answer(request, context, 409)
    context = {"item": updated, "zone": stored.config.zone, "number": stored}
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"/console/numbers/{number}/after-hours?sent={updated.id}")
    return render_fragment(request, "after_hours/_sent.html", context)


async def _form_again(
    request: web.Request,
    item: AfterHoursContact,
    choice: str,
    variables: list[str],
    force: bool,
    field: str,
    message: str,
) -> web.Response:
    context = await _form_context(
        request, item, choice=choice, variables=variables, force=force,
        errors={field: message}, message=message,
    )  # fmt: skip
    return _form_answer(request, context, 422)


def _form_answer(request: web.Request, context: dict[str, Any], status: int) -> web.Response:
    return render_fragment(request, "after_hours/_message_form.html", context, status=status)
