"""Authentication of `/api/v1`: a middleware that refuses every call without a valid token.

Default-deny: the middleware guards every path under `/api/v1`, including routes added later
by other modules, so a handler cannot forget to authenticate. Only `PUBLIC_PATHS` answer
without a token (the OpenAPI document describes the API, it holds no data).

Handlers read the caller with `caller_of(request)` (a `bot.domain.auth.Caller`: id, role, numbers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.appkeys import settings_key, stores_key
from bot.domain.auth import BOOTSTRAP_ADMIN, Caller, bearer_token, hash_token, is_bootstrap_token
from handlers.auth_failures import begin_check, too_many_failures
from handlers.middlewares import error_body

log = structlog.get_logger(__name__)

API_PREFIX: Final = "/api/v1"
PUBLIC_PATHS: Final = frozenset({f"{API_PREFIX}/openapi.json"})
# The attribute `accepts_query_token` sets on a handler.
_QUERY_TOKEN_ATTR: Final = "deskline_accepts_query_token"  # noqa: S105 -- a name

# web.RequestKey appeared in aiohttp 3.14, which also started warning on str request keys;
# on 3.13 a str key is the only option and warns nothing.
_CALLER: Final[Any] = (
    web.RequestKey("deskline.caller", Caller) if hasattr(web, "RequestKey") else "deskline.caller"
)

_AnyHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def accepts_query_token(handler: _AnyHandler) -> _AnyHandler:
    """Let a handler also be authenticated by `?token=` (browsers' EventSource cannot send
    headers). The header still wins when both are given."""
    setattr(handler, _QUERY_TOKEN_ATTR, True)
    return handler


def caller_of(request: web.Request) -> Caller:
    """The authenticated caller of an `/api/v1` request (set by `authenticate`)."""
    return cast(Caller, request[_CALLER])


def forbid_unless(allowed: bool, message: str = "not allowed for this caller") -> None:
    """Raise 403 unless `allowed`."""
    if not allowed:
        raise web.HTTPForbidden(reason=message)


def _is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _unauthorized(message: str) -> web.Response:
    response = error_body(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="deskline"'
    return response


async def _resolve(request: web.Request, token: str) -> Caller | None:
    admin = request.app[settings_key].admin_token
    if is_bootstrap_token(token, admin.get_secret_value() if admin else None):
        return BOOTSTRAP_ADMIN
    agent = await request.app[stores_key].agents.for_token(hash_token(token))
    if agent is None:
        return None
    return Caller(id=agent.id, role=agent.role, numbers=frozenset(agent.numbers))


async def caller_again(request: web.Request) -> Caller | None:
    """The caller of `request` resolved anew from the token it presented, as `authenticate`
    resolved it: None once the token is revoked or its agent deleted; the current role and
    numbers otherwise. For answers that outlive the check at their start (event streams)."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and getattr(request.match_info.handler, _QUERY_TOKEN_ATTR, False):
        token = request.query.get("token") or None
    return None if token is None else await _resolve(request, token)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 for every `/api/v1` call without a valid bearer token; sets the caller otherwise.

    The agent behind a token is read on every call, so a change of role or numbers, a
    revocation or a deletion applies to the very next request.

    Failed authentications are limited (handlers/auth_failures.py): a client over its budget
    gets 429 with `Retry-After` before its token is even looked at, so it cannot go on
    guessing; a wrong token is counted, a right one never is.
    """
    if not _is_api(request.path) or request.path in PUBLIC_PATHS:
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and getattr(request.match_info.handler, _QUERY_TOKEN_ATTR, False):
        token = request.query.get("token") or None
    # Before the token is looked at: a client over its budget learns nothing from it.
    check = await begin_check(request, credential=token is not None)
    if check.wait_s:
        return too_many_failures(check.wait_s)
    if token is None:
        # Not a guess: nothing was checked, so nothing is counted.
        return _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    caller = await _resolve(request, token)
    if caller is None:
        log.info("api_token_rejected", path=request.path)
        wait_s = await check.failed()
        if wait_s:
            return too_many_failures(wait_s)
        return _unauthorized("invalid or revoked token")
    await check.passed()
    request[_CALLER] = caller
    structlog.contextvars.bind_contextvars(caller=caller.id)
    return await handler(request)
