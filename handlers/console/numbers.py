"""Console pages of numbers: the list (with the header's number picker), a new number, and a
number's chatbot settings, saved section by section with a live preview of the next reply.

Saving goes through `bot.services.numbers` (`put_number`, `patch_number`), as `PUT`/`PATCH
/api/v1/numbers/{id}` do, so validation, the audit log, the version and the rescheduled
callbacks are the API's; the same permission checks (`bot.domain.auth`) decide who sees and
who changes what.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from bot.appkeys import clock_key, deps_key, stores_key
from bot.domain import auth
from bot.domain.config import LANGUAGES, StoredNumber, is_valid_id, patched_document
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.monitoring import can_monitor
from bot.domain.schedule import validate_timezone
from bot.services import numbers
from handlers.console.context import is_htmx, user_of
from handlers.console.forms import (
    DAY_NAMES,
    SECTIONS,
    Form,
    error_target,
    field_label,
    minimal_patch,
    section_from_form,
    section_of,
)
from handlers.console.preview import NextReply, next_reply
from handlers.console.render import render_fragment, render_page, visible_numbers

# What a new number starts with: weekdays 09:00-18:00, changed on the next page.
_NEW_NUMBER_HOURS: Final = {
    "weekly": {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
}
_COMMON_ZONES: Final = (
    "America/Sao_Paulo",
    "America/Manaus",
    "America/Recife",
    "America/Argentina/Buenos_Aires",
    "America/Mexico_City",
    "America/Bogota",
    "America/Santiago",
    "America/Lima",
    "America/New_York",
    "Europe/Lisbon",
    "Europe/Madrid",
    "Europe/London",
    "UTC",
)


@dataclass(frozen=True, slots=True)
class NumberCard:
    stored: StoredNumber
    now: NextReply
    monitor: bool = False


def number_param(request: web.Request) -> str:
    """The `{phone_number_id}` of the path: 404 when it cannot be one."""
    number = request.match_info["phone_number_id"]
    if not is_valid_id(number):
        raise web.HTTPNotFound(reason=f"There is no number {number[:64]!r}.")
    return number


async def readable_number(request: web.Request) -> StoredNumber:
    """The number of the path, if the user is attached to it (403), and it exists (404).

    Also remembers it as the number selected in the header.
    """
    number = number_param(request)
    user = user_of(request)
    if not auth.can_read_number(user.caller, number):
        raise web.HTTPForbidden(reason="You are not attached to this number.")
    stored = await request.app[stores_key].numbers.get(number)
    if stored is None:
        raise NotFoundError(f"Number {number} is not served.")
    if user.session.number != number:
        await request.app[stores_key].console_sessions.select_number(user.session.id, number)
    return stored


async def _cards(request: web.Request) -> list[NumberCard]:
    caller = user_of(request).caller
    now = request.app[clock_key].now()
    return [
        NumberCard(
            s, next_reply(s.config, s.phone_number_id, now), can_monitor(caller, s.phone_number_id)
        )
        for s in await visible_numbers(request)
    ]


async def home(request: web.Request) -> web.Response:
    """The numbers the user serves, with whether each is open now and its next reply."""
    user = user_of(request)
    cards = await _cards(request)
    return await render_page(
        request,
        "numbers.html",
        {
            "cards": cards,
            "can_create": user.caller.is_admin,
            "new": {"language": "pt-BR", "timezone": "America/Sao_Paulo"},
            "errors": {},
            "languages": LANGUAGES,
            "zones": _COMMON_ZONES,
            "section": "numbers",
        },
    )


async def select_number(request: web.Request) -> web.Response:
    """The header's number picker: go to the same page of another number."""
    number = request.query.get("number", "")
    page = request.query.get("page", "settings")
    if page not in ("settings", "after-hours", "tickets", "monitoring", "history"):
        page = "settings"
    if not is_valid_id(number):
        raise web.HTTPSeeOther("/console")
    raise web.HTTPSeeOther(f"/console/numbers/{number}/{page}")


async def create_number(request: web.Request) -> web.Response:
    """A new number (admins), starting on weekdays 09:00-18:00; then its settings page.

    Refuses an id that is already served (the API's PUT would replace it: here that is never
    what the admin filling in "new number" means).
    """
    user = user_of(request)
    # Serving a new number, like stopping one (bot.domain.auth.can_delete_number), is for admins.
    if not user.caller.is_admin:
        raise web.HTTPForbidden(reason="Only administrators add numbers.")
    form = await request.post()
    fields = ("phone_number_id", "display_name", "timezone", "language")
    new = {k: str(form.get(k, "")).strip() for k in fields}
    errors: dict[str, str] = {}
    number = new["phone_number_id"]
    stores = request.app[stores_key]
    if not is_valid_id(number):
        errors["phone_number_id"] = "The phone number ID is 1-64 letters, digits, _ . or -."
    elif await stores.numbers.get(number) is not None:
        errors["phone_number_id"] = f"Number {number} is already served."
    else:
        body: dict[str, Any] = {
            "display_name": new["display_name"] or None,
            "timezone": new["timezone"],
            "language": new["language"] or None,
            "service_hours": _NEW_NUMBER_HOURS,
        }
        try:
            await numbers.put_number(request.app[deps_key], user.caller, number, body)
        except InvalidInputError as exc:
            errors[exc.field or "phone_number_id"] = exc.message
        else:
            raise web.HTTPSeeOther(f"/console/numbers/{number}/settings?saved=created")
    return await render_page(
        request,
        "numbers.html",
        {
            "cards": await _cards(request),
            "can_create": True,
            "new": new,
            "errors": errors,
            "languages": LANGUAGES,
            "zones": _COMMON_ZONES,
            "section": "numbers",
        },
        status=422,
    )


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name a number may use (computed once)."""
    names = []
    for name in sorted(zoneinfo.available_timezones()):
        try:
            names.append(validate_timezone(name))
        except ValueError:
            continue
    return tuple(names)


def _form_state(
    stored: StoredNumber,
    *,
    section: str | None = None,
    submitted: Any = None,
    error: InvalidInputError | None = None,
    saved: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Every section's template state: filled from the stored settings, except `section`,
    which shows what was `submitted` and the `error` next to its field."""
    view = stored.view()
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        sec = submitted if name == section and submitted is not None else section_of(view, name)
        state: dict[str, Any] = {"sec": sec, "errors": {}, "message": None, "saved": saved == name}
        if name == section and error is not None:
            target = error_target(error.field, sec.fields())
            # Next to its field the path would only repeat what the label says; above the
            # form it is said in the form's words.
            inline = error.message.removeprefix(f"{error.field}: ")
            inline = inline[:1].upper() + inline[1:]
            state["message"] = f"{field_label(error.field)}: {inline}" if error.field else inline
            if target is not None:
                state["errors"] = {target: inline}
        out[name] = state
    return out


def _settings_context(
    request: web.Request, stored: StoredNumber, forms: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    caller = user_of(request).caller
    now = request.app[clock_key].now()
    return {
        "number": stored,
        "forms": forms,
        "can_edit": auth.can_change_number(caller, stored.phone_number_id),
        "reply": next_reply(stored.config, stored.phone_number_id, now),
        "draft": False,
        "invalid": None,
        "days": DAY_NAMES,
        "languages": LANGUAGES,
        "zones": zone_names(),
        "zone": stored.config.zone,
        "section": "settings",
    }


async def settings_page(request: web.Request) -> web.Response:
    """A number's chatbot settings: one form per section, and what a customer gets now."""
    stored = await readable_number(request)
    saved = request.query.get("saved")
    forms = _form_state(stored, saved=saved)
    return await render_page(request, "settings.html", _settings_context(request, stored, forms))


async def _changeable(request: web.Request) -> StoredNumber:
    stored = await readable_number(request)
    numbers.require_change(user_of(request).caller, stored.phone_number_id)
    return stored


async def _save(request: web.Request, stored: StoredNumber, patch: dict[str, Any]) -> StoredNumber:
    """`PATCH /api/v1/numbers/{id}` as the API does it (`numbers.patch_number`): the merge
    patch, validated whole, then the pending after-hours callbacks follow the new hours
    (raises InvalidInputError)."""
    caller = user_of(request).caller
    return await numbers.patch_number(request.app[deps_key], caller, stored.phone_number_id, patch)


def _form_dict(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}


async def _section_answer(
    request: web.Request,
    stored: StoredNumber,
    name: str,
    forms: dict[str, dict[str, Any]],
    status: int,
) -> web.Response:
    context = _settings_context(request, stored, forms)
    if is_htmx(request):
        context["f"] = forms[name]
        context["oob"] = True
        return render_fragment(request, f"settings/_{name}.html", context, status=status)
    return await render_page(request, "settings.html", context, status=status)


async def save_section(request: web.Request) -> web.Response:
    """Save one section: 200 (htmx: the section, and the next reply out of band) or 303 back
    to the page; 422 with the section as submitted and the error next to its field."""
    stored = await _changeable(request)
    name = request.match_info["section"]
    if name not in SECTIONS:
        raise web.HTTPNotFound(reason=f"There is no settings section {name[:32]!r}.")
    form: Form = _form_dict(await request.post())
    section = section_from_form(name, form, stored.config.zone)
    patch = minimal_patch(section.patch(), section_of(stored.view(), name).patch())
    try:
        updated = await _save(request, stored, patch) if patch else stored
    except InvalidInputError as exc:
        forms = _form_state(stored, section=name, submitted=section, error=exc)
        return await _section_answer(request, stored, name, forms, 422)
    if not is_htmx(request):
        raise web.HTTPSeeOther(
            f"/console/numbers/{stored.phone_number_id}/settings?saved={name}#section-{name}"
        )
    return await _section_answer(request, updated, name, _form_state(updated, saved=name), 200)


async def absence_switch(request: web.Request) -> web.Response:
    """The absence switch: `{"absence": {"enabled": …}}`, the toggle the API documents; the
    message, dates and suggested agent stay."""
    stored = await _changeable(request)
    form = await request.post()
    enabled = form.get("absence.enabled") == "on"
    updated = await _save(request, stored, {"absence": {"enabled": enabled}})
    if not is_htmx(request):
        raise web.HTTPSeeOther(
            f"/console/numbers/{stored.phone_number_id}/settings?saved=absence#section-absence"
        )
    return await _section_answer(
        request, updated, "absence", _form_state(updated, saved="absence"), 200
    )


async def preview(request: web.Request) -> web.Response:
    """The next reply with a section's unsaved values (nothing is stored); the validation
    error instead when they are not valid yet."""
    stored = await readable_number(request)
    name = request.match_info["section"]
    if name not in SECTIONS:
        raise web.HTTPNotFound(reason=f"There is no settings section {name[:32]!r}.")
    form: Form = _form_dict(await request.post())
    section = section_from_form(name, form, stored.config.zone)
    context: dict[str, Any] = {"number": stored, "draft": True, "invalid": None}
    patch = minimal_patch(section.patch(), section_of(stored.view(), name).patch())
    try:
        _, config = patched_document(stored.document, patch)
    except InvalidInputError as exc:
        context["invalid"] = exc.message
        context["reply"] = None
    else:
        now = request.app[clock_key].now()
        context["reply"] = next_reply(config, stored.phone_number_id, now)
    return render_fragment(request, "settings/_next_reply.html", context)
