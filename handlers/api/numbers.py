"""`/api/v1/numbers`: a number's chatbot settings, its service hours now, its audit log.

Permissions (bot.domain.auth): everybody attached to a number reads it; admins and its managers
change it; only admins delete it; admins and its managers read its audit log. A caller who
is not attached to a number gets 403 whether or not it exists.
"""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web

from bot.appkeys import clock_key, queue_key, stores_key
from bot.domain import auth
from bot.domain.config import AuditPage, HoursAnswer, NumberPage, NumberSummary
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.hours import explain
from bot.runtime.queue import enqueue_reschedule_callbacks
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless

# `?at=2026-01-05T10:00:00+00:00` unencoded reaches us with the '+' decoded as a space.
_SPACE_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")
# The engine looks a year ahead; the holiday tables and zone rules are meaningful well inside.
_AT_YEARS = range(1970, 2201)


def _number(request: web.Request) -> str:
    return path_id(request, "phone_number_id")


async def _reschedule_callbacks(request: web.Request, number: str, version: int) -> None:
    """Pending after-hours callbacks follow a settings change (one job per version)."""
    if await request.app[stores_key].after_hours.has_pending_callbacks(number):
        await enqueue_reschedule_callbacks(request.app[queue_key], number, version)


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
    forbid_unless(auth.can_change_number(caller, number), "only admins and managers of this"
                  " number change its settings")  # fmt: skip
    body = await read_json(request)
    stored, created = await request.app[stores_key].numbers.put(
        number, body, actor=caller.id, at=request.app[clock_key].now()
    )
    await _reschedule_callbacks(request, number, stored.version)
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
    forbid_unless(auth.can_change_number(caller, number), "only admins and managers of this"
                  " number change its settings")  # fmt: skip
    patch = await read_json(request)
    stored = await request.app[stores_key].numbers.patch(
        number, patch, actor=caller.id, at=request.app[clock_key].now()
    )
    await _reschedule_callbacks(request, number, stored.version)
    return model_response(stored.view())


async def delete_number(request: web.Request) -> web.Response:
    """Stop serving a number (admins): 204, or 404 when it was not served."""
    number = _number(request)
    caller = caller_of(request)
    forbid_unless(auth.can_delete_number(caller), "only admins delete numbers")
    deleted = await request.app[stores_key].numbers.delete(
        number, actor=caller.id, at=request.app[clock_key].now()
    )
    if not deleted:
        raise NotFoundError(f"number {number} not found")
    return web.Response(status=204)


def parse_at(raw: str | None, now: datetime) -> datetime:
    """The `at` query parameter: an ISO 8601 instant with an offset or Z; `now` when absent.

    Raises:
        InvalidInputError: field `at`, when it is not ISO 8601, is naive, or is out of range.
    """
    if raw is None:
        return now
    text = _SPACE_OFFSET.sub(r"+\1", raw.strip())
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"at must be an ISO 8601 instant, e.g. 2026-01-05T10:00:00-03:00; got {raw!r}", "at"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInputError("at must carry an offset or Z (a naive time is ambiguous)", "at")
    if at.year not in _AT_YEARS:
        raise InvalidInputError(
            f"at must be between {_AT_YEARS.start} and {_AT_YEARS.stop - 1}", "at"
        )
    return at


async def get_hours(request: web.Request) -> web.Response:
    """Whether the number is open at `at` (default now), why, and when it next opens.

    `next_opening` is in the number's offset: `at` itself when open, null when the number does
    not open within a year. `reason` is the rule that decided (`always_open`, `weekly`,
    `exception`, `holiday`, `closed_day`); `label` the exception's label or holiday's name.
    """
    number = _number(request)
    forbid_unless(auth.can_read_number(caller_of(request), number), "not attached to this number")
    at = parse_at(request.query.get("at"), request.app[clock_key].now())
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
    raw_limit = request.query.get("limit", "100")
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        raise InvalidInputError("limit must be an integer from 1 to 500", "limit")
    entries = await request.app[stores_key].audit.entries(number, limit)
    return model_response(AuditPage(items=entries))
