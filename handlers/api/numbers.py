"""`/api/v1/numbers`: a number's chatbot settings, its service hours now, its audit log.

Permissions (bot.domain.auth): everybody attached to a number reads it; admins and its managers
change it; only admins delete it; admins and its managers read its audit log. A caller who
is not attached to a number gets 403 whether or not it exists.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import clock_key, deps_key, stores_key
from bot.domain import auth
from bot.domain.config import AuditPage, HoursAnswer, NumberPage, NumberSummary
from bot.domain.errors import NotFoundError
from bot.domain.hours import explain
from bot.services import numbers
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import AuditQuery, HoursQuery, read_query


def _number(request: web.Request) -> str:
    return path_id(request, "phone_number_id")


async def list_numbers(request: web.Request) -> web.Response:
    """The served numbers the caller is attached to (admins: all), by id."""
    caller = caller_of(request)
    store = request.app[stores_key].numbers
    served = await store.ids()
    ids = served if caller.is_admin else [n for n in served if n in caller.numbers]
    items = [
        NumberSummary(
            phone_number_id=s.phone_number_id,
            display_name=s.config.display_name,
            version=s.version,
        )
        for s in await store.get_many(ids)
    ]
    return model_response(NumberPage(items=items))


async def put_number(request: web.Request) -> web.Response:
    """Create (201) or replace (200) a number's settings; 422 naming the field, nothing stored."""
    number = _number(request)
    caller = caller_of(request)
    numbers.require_change(caller, number)  # 403 before the body is read
    body = await read_json(request)
    stored, created = await numbers.put_number(request.app[deps_key], caller, number, body)
    return model_response(stored.view(), status=201 if created else 200)


async def get_number(request: web.Request) -> web.Response:
    """The settings with every default filled, plus `phone_number_id` and `version`."""
    number = _number(request)
    forbid_unless(auth.can_read_number(caller_of(request), number), "not attached to this number")
    stored = await request.app[stores_key].numbers.get(number)
    if stored is None:
        raise NotFoundError(f"number {number} not found")
    return model_response(stored.view())


async def patch_number(request: web.Request) -> web.Response:
    """JSON Merge Patch of the settings; the merged result is validated whole (422, nothing
    stored). Idempotent: a patch that changes nothing keeps the version."""
    number = _number(request)
    caller = caller_of(request)
    numbers.require_change(caller, number)  # 403 before the body is read
    patch = await read_json(request)
    stored = await numbers.patch_number(request.app[deps_key], caller, number, patch)
    return model_response(stored.view())


async def delete_number(request: web.Request) -> web.Response:
    """Stop serving a number (admins): 204, or 404 when it was not served."""
    await numbers.delete_number(request.app[deps_key], caller_of(request), _number(request))
    return web.Response(status=204)


async def get_hours(request: web.Request) -> web.Response:
    """Whether the number is open at `at` (default now), why, and when it next opens.

    `next_opening` is in the number's offset: `at` itself when open, null when the number does
    not open within a year. `reason` is the rule that decided (`always_open`, `weekly`,
    `exception`, `holiday`, `closed_day`); `label` the exception's label or holiday's name.
    """
    number = _number(request)
    forbid_unless(auth.can_read_number(caller_of(request), number), "not attached to this number")
    at = read_query(request, HoursQuery).at or request.app[clock_key].now()
    stored = await request.app[stores_key].numbers.get(number)
    if stored is None:
        raise NotFoundError(f"number {number} not found")
    config = stored.config
    why = explain(config.service_hours, config.zone, at)
    answer = HoursAnswer(
        at=at.astimezone(config.zone),
        open=why.open,
        next_opening=why.next_opening,
        reason=why.reason,
        label=why.label,
    )
    return model_response(answer)


async def get_audit(request: web.Request) -> web.Response:
    """The latest changes of a number's settings, newest first (`?limit=`, 1..500, 100)."""
    number = _number(request)
    forbid_unless(auth.can_read_audit(caller_of(request), number), "only admins and managers"
                  " of this number read its audit log")  # fmt: skip
    limit = read_query(request, AuditQuery).limit
    entries = await request.app[stores_key].audit.entries(number, limit)
    return model_response(AuditPage(items=entries))
