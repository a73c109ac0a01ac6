"""Message templates active messages may use: the WABA's, read from the Graph API and cached,
then the ones admins register by hand.

With WABA access (`DESKLINE_WABA_ID` and `DESKLINE_ACCESS_TOKEN`) the list comes from
`GET /{waba_id}/message_templates` through `Deps.graph`, cached in Redis and re-read after
`TEMPLATES_FRESH_S`; when Meta cannot be read, the last copy serves (a send should not fail
because Meta's listing is down). Without it, only registered templates exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

import structlog

from bot.domain.auth import Caller
from bot.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OutboxError,
)
from bot.runtime.deps import Deps
from bot.runtime.outbox import GraphOutbox
from storage.after_hours import LANGUAGE_PATTERN, TEMPLATE_NAME_PATTERN
from storage.keys import TEMPLATES_FRESH_S
from storage.templates import (
    GraphCopy,
    Template,
    TemplateInput,
    TemplatePage,
    TemplateView,
    from_graph,
)

# The templates' models are re-exported for handlers (which may not import storage).
__all__ = [
    "FRESH",
    "Available",
    "GraphCopy",
    "Template",
    "TemplateInput",
    "TemplatePage",
    "TemplateView",
    "available",
    "check_key",
    "find_template",
    "graph_copy",
    "refresh",
    "register",
    "require_admin",
    "require_refresh",
    "unregister",
]

log = structlog.get_logger(__name__)

# How long a Graph copy serves before it is read again.
FRESH: Final = timedelta(seconds=TEMPLATES_FRESH_S)
# Meta pages the list; a WABA with more than this many pages of 100 is not expected.
MAX_PAGES: Final = 20
# An unknown name re-reads the Graph API at most this often (a new template may have just been
# approved), so that typos cannot turn into a request to Meta each.
MISS_REFRESH_AFTER: Final = timedelta(minutes=1)
_FIELDS: Final = "name,language,status,category,components"
_NAME_RE: Final = re.compile(TEMPLATE_NAME_PATTERN)
_LANGUAGE_RE: Final = re.compile(LANGUAGE_PATTERN)


@dataclass(frozen=True, slots=True)
class Available:
    """Every template active messages may use: the Graph copy's (None without WABA access or
    before the first read), then the registered ones."""

    copy: GraphCopy | None
    registered: list[Template]

    @property
    def templates(self) -> list[Template]:
        return [*(self.copy.templates if self.copy else []), *self.registered]

    def page(self) -> TemplatePage:
        """The list as the API answers it."""
        return TemplatePage(
            items=[TemplateView.of(t) for t in self.templates],
            fetched_at=None if self.copy is None else self.copy.fetched_at,
        )


def _graph(deps: Deps) -> tuple[GraphOutbox, str] | None:
    """The Graph client and the WABA id, when deskline may read the WABA's templates."""
    if deps.graph is not None and deps.settings.waba_id:
        return deps.graph, deps.settings.waba_id
    return None


async def _fetch(graph: GraphOutbox, waba_id: str) -> list[Template]:
    """Every template of the WABA, following Meta's paging cursors (raises OutboxError)."""
    templates: list[Template] = []
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


async def _reread(deps: Deps, graph: GraphOutbox, waba_id: str) -> GraphCopy:
    """Read the Graph API now and replace the cached copy (raises OutboxError)."""
    templates = await _fetch(graph, waba_id)
    log.info("templates_refreshed", count=len(templates))
    return await deps.stores.templates.save_graph_copy(waba_id, templates, deps.clock.now())


async def graph_copy(deps: Deps, *, max_age: timedelta = FRESH) -> GraphCopy | None:
    """The Graph API's list, read again when the cached copy is older than `max_age`.

    None without WABA access. When the Graph API cannot be read, the last copy (if any)
    serves.
    """
    access = _graph(deps)
    if access is None:
        return None
    graph, waba_id = access
    cached = await deps.stores.templates.graph_copy(waba_id)
    if cached is not None and deps.clock.now() - cached.fetched_at < max_age:
        return cached
    try:
        return await _reread(deps, graph, waba_id)
    except OutboxError as exc:
        log.warning("templates_refresh_failed", code=exc.code, status=exc.http_status)
        return cached


async def available(deps: Deps) -> Available:
    """Every template active messages may use (the Graph copy read again when stale)."""
    copy = await graph_copy(deps)
    return Available(copy, await deps.stores.templates.registered())


async def find_template(deps: Deps, name: str, language: str) -> Template | None:
    """The template `name` in `language`: the Graph API's first, then the registered ones.
    A name the copy lacks re-reads the Graph API when the copy is older than
    `MISS_REFRESH_AFTER` (it may have just been approved)."""
    copy = await graph_copy(deps)
    if copy is not None:
        found = copy.find(name, language)
        if found is None and deps.clock.now() - copy.fetched_at >= MISS_REFRESH_AFTER:
            copy = await graph_copy(deps, max_age=MISS_REFRESH_AFTER)
            found = None if copy is None else copy.find(name, language)
        if found is not None:
            return found
    return await deps.stores.templates.find_registered(name, language)


def require_refresh(caller: Caller) -> None:
    """Raise ForbiddenError unless `caller` refreshes the Graph copy (admins, managers)."""
    if not (caller.is_admin or caller.role == "manager"):
        raise ForbiddenError("only admins and managers")


async def refresh(deps: Deps, caller: Caller) -> Available:
    """Read the Graph API now (admins, managers) and answer the whole list.

    Raises:
        ForbiddenError: see `require_refresh`.
        ConflictError: `no_waba`, without WABA access.
        OutboxError: the Graph API refused or could not be reached (the cached copy stays).
    """
    require_refresh(caller)
    access = _graph(deps)
    if access is None:
        raise ConflictError(
            "no_waba",
            "DESKLINE_WABA_ID and DESKLINE_ACCESS_TOKEN are not both set: register templates"
            " with PUT /api/v1/templates/{name}/{language}",
        )
    try:
        copy = await _reread(deps, *access)
    except OutboxError as exc:
        log.warning("templates_refresh_failed", code=exc.code, status=exc.http_status)
        raise
    return Available(copy, await deps.stores.templates.registered())


def require_admin(caller: Caller, doing: str) -> None:
    """Raise ForbiddenError unless `caller` is an admin (who `doing` templates by hand)."""
    if not caller.is_admin:
        raise ForbiddenError(f"only admins {doing} templates")


def check_key(name: str, language: str) -> None:
    """Raise InvalidInputError naming `name` or `language` unless they could name a template
    (Meta's rules: lowercase letters, digits and _; a language code such as pt_BR or en)."""
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidInputError("name must be lowercase letters, digits and _", "name")
    if _LANGUAGE_RE.fullmatch(language) is None:
        raise InvalidInputError("language must be Meta's code, e.g. pt_BR or en", "language")


async def register(
    deps: Deps, caller: Caller, name: str, language: str, data: TemplateInput
) -> tuple[Template, bool]:
    """Register or replace a template by hand (admins), for numbers whose WABA deskline cannot
    read; its body must be the approved text. Returns it and whether it was created.

    Raises:
        ForbiddenError: the caller is not an admin.
        InvalidInputError: `name`, `language` (`check_key`), or `body` with named
            placeholders (only {{1}}, {{2}}... are sent).
    """
    require_admin(caller, "register")
    check_key(name, language)
    template = Template(
        name=name, language=language, body=data.body, category=data.category, source="registered"
    )
    if not template.positional:
        raise InvalidInputError(
            "body: use positional placeholders {{1}}, {{2}}...; named ones are not supported",
            "body",
        )
    return template, await deps.stores.templates.register(template)


async def unregister(deps: Deps, caller: Caller, name: str, language: str) -> None:
    """Forget a registered template (admins).

    Raises:
        ForbiddenError: the caller is not an admin.
        InvalidInputError: `name` or `language` (`check_key`).
        NotFoundError: there was no such registered template.
    """
    require_admin(caller, "delete")
    check_key(name, language)
    if not await deps.stores.templates.unregister(name, language):
        raise NotFoundError(f"no registered template {name} ({language})")
