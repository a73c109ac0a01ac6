"""`/api/v1/templates`: the message templates active messages may use.

With WABA access (`DESKLINE_WABA_ID` and `DESKLINE_ACCESS_TOKEN`) the list comes from the Graph
API (`GET /{waba_id}/message_templates`), cached in Redis for an hour and refreshable by admins
and managers; without it, admins register templates by hand (name, language, body text).

Permissions: every authenticated caller lists them (agents pick one to send); admins and
managers refresh the Graph copy; admins register and delete. The workflows:
bot/services/templates.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key
from bot.domain.config import parse_body
from bot.domain.errors import OutboxError
from bot.services import templates
from bot.services.templates import TemplateInput, TemplateView
from handlers.api import model_response, read_json
from handlers.api.auth import caller_of


def _path(request: web.Request) -> tuple[str, str]:
    name, language = request.match_info["name"], request.match_info["language"]
    templates.check_key(name, language)
    return name, language


async def list_templates(request: web.Request) -> web.Response:
    """Every template active messages may use: the Graph API's (cached), then registered."""
    caller_of(request)
    return model_response((await templates.available(request.app[deps_key])).page())


async def refresh_templates(request: web.Request) -> web.Response:
    """Re-read the Graph API now (admins, managers). 409 `no_waba` without WABA access; 502
    when the Graph API refused or could not be reached (the cached copy stays)."""
    try:
        found = await templates.refresh(request.app[deps_key], caller_of(request))
    except OutboxError as exc:
        raise web.HTTPBadGateway(reason=f"the Graph API did not answer: {exc.message}") from None
    return model_response(found.page())


async def put_template(request: web.Request) -> web.Response:
    """Register (201) or replace (200) a template by hand (admins): for numbers whose WABA
    deskline cannot read. The body text must be the approved one: variables are checked
    against its {{n}} placeholders."""
    caller = caller_of(request)
    templates.require_admin(caller, "register")  # 403 before the path and body are read
    name, language = _path(request)
    body = parse_body(TemplateInput, await read_json(request))
    template, created = await templates.register(
        request.app[deps_key], caller, name, language, body
    )
    return model_response(TemplateView.of(template), status=201 if created else 200)


async def delete_template(request: web.Request) -> web.Response:
    """Forget a registered template (admins): 204, or 404 when there was none."""
    caller = caller_of(request)
    templates.require_admin(caller, "delete")  # 403 before the path is read
    name, language = _path(request)
    await templates.unregister(request.app[deps_key], caller, name, language)
    return web.Response(status=204)
