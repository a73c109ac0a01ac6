"""`/api/v1/templates`: the message templates active messages may use.

With WABA access (`DESKLINE_WABA_ID` and `DESKLINE_ACCESS_TOKEN`) the list comes from the Graph
API (`GET /{waba_id}/message_templates`), cached in Redis for an hour and refreshable by admins
and managers; without it, admins register templates by hand (name, language, body text).

Permissions: every authenticated caller lists them (agents pick one to send); admins and
managers refresh the Graph copy; admins register and delete.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import structlog
from aiohttp import web

from bot.appkeys import clock_key, settings_key, stores_key
from bot.domain.config import parse_body
from bot.domain.errors import ConflictError, InvalidInputError, NotFoundError, OutboxError
from bot.runtime.outbox import GraphOutbox
from bot.settings import Settings
from handlers.api import model_response, read_json
from handlers.api.auth import caller_of, forbid_unless
from storage import keys
from storage.after_hours import LANGUAGE_PATTERN, TEMPLATE_NAME_PATTERN
from storage.templates import (
    GraphCopy,
    Template,
    TemplateInput,
    TemplatePage,
    TemplateView,
    from_graph,
)

log = structlog.get_logger(__name__)

# Meta pages the list; a WABA with more than this many pages of 100 is not expected.
MAX_PAGES: Final = 20
# An unknown name re-reads the Graph API at most this often (a new template may have just been
# approved), so that typos cannot turn into a request to Meta each.
MISS_REFRESH_AFTER: Final = timedelta(minutes=1)
_FIELDS: Final = "name,language,status,category,components"
_NAME_RE: Final = re.compile(TEMPLATE_NAME_PATTERN)
_LANGUAGE_RE: Final = re.compile(LANGUAGE_PATTERN)


def _graph_access(settings: Settings) -> tuple[str, str] | None:
    """(waba_id, token) when deskline may read the WABA's templates."""
    if settings.waba_id and settings.access_token is not None:
        return settings.waba_id, settings.access_token.get_secret_value()
    return None


async def _fetch(settings: Settings, waba_id: str, token: str) -> list[Template]:
    """Every template of the WABA from the Graph API, following Meta's paging cursors.

    Raises:
        OutboxError: the Graph API refused or could not be reached.
    """
    # A session of its own: the web process shares no Graph client with its handlers, and the
    # list is read at most once an hour (or on an admin's refresh).
    timeout = aiohttp.ClientTimeout(total=settings.graph_timeout_s, connect=5)
    templates: list[Template] = []
    async with aiohttp.ClientSession(timeout=timeout) as http:
        graph = GraphOutbox(
            http,
            base_url=settings.graph_api_url,
            version=settings.graph_api_version,
            token=token,
            attempts=2,
        )
        query: dict[str, str] = {"fields": _FIELDS, "limit": "100"}
        for _ in range(MAX_PAGES):
            data: Any = await graph.get(f"{waba_id}/message_templates?{urlencode(query)}")
            items = data.get("data") if isinstance(data, dict) else None
            for item in items if isinstance(items, list) else []:
                template = from_graph(item) if isinstance(item, dict) else None
                if template is not None:
                    templates.append(template)
            paging = data.get("paging") if isinstance(data, dict) else None
            after = (paging.get("cursors") or {}).get("after") if isinstance(paging, dict) else None
            if not (isinstance(paging, dict) and paging.get("next") and after):
                break
            query["after"] = str(after)
    return templates


async def _refresh(request: web.Request, waba_id: str, token: str) -> GraphCopy:
    """Read the Graph API now and replace the cached copy (raises OutboxError)."""
    settings = request.app[settings_key]
    templates = await _fetch(settings, waba_id, token)
    now = request.app[clock_key].now()
    log.info("templates_refreshed", count=len(templates))
    return await request.app[stores_key].templates.save_graph_copy(waba_id, templates, now)


async def graph_copy(request: web.Request, *, max_age: timedelta) -> GraphCopy | None:
    """The Graph API's list, re-read when the cached copy is older than `max_age`.

    None without WABA access. When the Graph API cannot be read, the last copy (if any) is
    served: a send should not fail because Meta's listing is down.
    """
    access = _graph_access(request.app[settings_key])
    if access is None:
        return None
    waba_id, token = access
    cached = await request.app[stores_key].templates.graph_copy(waba_id)
    now = request.app[clock_key].now()
    if cached is not None and now - cached.fetched_at < max_age:
        return cached
    try:
        return await _refresh(request, waba_id, token)
    except OutboxError as exc:
        log.warning("templates_refresh_failed", code=exc.code, status=exc.http_status)
        return cached


async def find_template(request: web.Request, name: str, language: str) -> Template | None:
    """The template `name` in `language`: the Graph API's first, then the registered ones."""
    fresh = timedelta(seconds=keys.TEMPLATES_FRESH_S)
    copy = await graph_copy(request, max_age=fresh)
    if copy is not None:
        found = copy.find(name, language)
        if found is None and request.app[clock_key].now() - copy.fetched_at >= MISS_REFRESH_AFTER:
            copy = await graph_copy(request, max_age=MISS_REFRESH_AFTER)
            found = None if copy is None else copy.find(name, language)
        if found is not None:
            return found
    return await request.app[stores_key].templates.find_registered(name, language)


def _page(copy: GraphCopy | None, registered: list[Template]) -> TemplatePage:
    items = [TemplateView.of(t) for t in (copy.templates if copy else [])]
    items += [TemplateView.of(t) for t in registered]
    return TemplatePage(items=items, fetched_at=None if copy is None else copy.fetched_at)


def _path(request: web.Request) -> tuple[str, str]:
    name, language = request.match_info["name"], request.match_info["language"]
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidInputError("name must be lowercase letters, digits and _", "name")
    if _LANGUAGE_RE.fullmatch(language) is None:
        raise InvalidInputError("language must be Meta's code, e.g. pt_BR or en", "language")
    return name, language


async def list_templates(request: web.Request) -> web.Response:
    """Every template active messages may use: the Graph API's (cached), then registered."""
    caller_of(request)
    copy = await graph_copy(request, max_age=timedelta(seconds=keys.TEMPLATES_FRESH_S))
    registered = await request.app[stores_key].templates.registered()
    return model_response(_page(copy, registered))


async def refresh_templates(request: web.Request) -> web.Response:
    """Re-read the Graph API now (admins, managers). 409 `no_waba` without WABA access; 502
    when the Graph API refused or could not be reached (the cached copy stays)."""
    caller = caller_of(request)
    forbid_unless(caller.is_admin or caller.role == "manager", "only admins and managers")
    access = _graph_access(request.app[settings_key])
    if access is None:
        raise ConflictError(
            "no_waba",
            "DESKLINE_WABA_ID and DESKLINE_ACCESS_TOKEN are not both set: register templates"
            " with PUT /api/v1/templates/{name}/{language}",
        )
    try:
        copy = await _refresh(request, *access)
    except OutboxError as exc:
        log.warning("templates_refresh_failed", code=exc.code, status=exc.http_status)
        raise web.HTTPBadGateway(reason=f"the Graph API did not answer: {exc.message}") from None
    registered = await request.app[stores_key].templates.registered()
    return model_response(_page(copy, registered))


async def put_template(request: web.Request) -> web.Response:
    """Register (201) or replace (200) a template by hand (admins): for numbers whose WABA
    deskline cannot read. The body text must be the approved one: variables are checked
    against its {{n}} placeholders."""
    forbid_unless(caller_of(request).is_admin, "only admins register templates")
    name, language = _path(request)
    body = parse_body(TemplateInput, await read_json(request))
    template = Template(
        name=name, language=language, body=body.body, category=body.category, source="registered"
    )
    if not template.positional:
        raise InvalidInputError(
            "body: use positional placeholders {{1}}, {{2}}...; named ones are not supported",
            "body",
        )
    created = await request.app[stores_key].templates.register(template)
    return model_response(TemplateView.of(template), status=201 if created else 200)


async def delete_template(request: web.Request) -> web.Response:
    """Forget a registered template (admins): 204, or 404 when there was none."""
    forbid_unless(caller_of(request).is_admin, "only admins delete templates")
    name, language = _path(request)
    if not await request.app[stores_key].templates.unregister(name, language):
        raise NotFoundError(f"no registered template {name} ({language})")
    return web.Response(status=204)
