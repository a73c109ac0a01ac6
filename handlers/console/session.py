"""Who is behind a `/console` request: sign-in with an API token, the session cookie, CSRF.

- **Sign-in** takes the bootstrap admin token or an agent token, checks it exactly as the API
  does, and starts a session (storage/console_sessions.py) that keeps the token's SHA-256
  digest, never the token. The caller is resolved again from that digest on every request,
  so a revoked token, a deleted agent or a changed role applies to the next page.
- **Cookie**: random session id, `HttpOnly`, `SameSite=Strict`, `Path=/console`; `Secure`
  (named `__Secure-…`) over HTTPS. Plain HTTP is allowed only on a loopback host (local runs
  and tests): anywhere else sign-in refuses, since the cookie would travel in clear.
- **CSRF**: `SameSite=Strict` keeps other sites' requests cookie-less; on top, every
  state-changing request must carry the session's CSRF token (form field `csrf` or header
  `X-CSRF-Token`, which the page sets on htmx requests), and an `Origin` header, when sent,
  must name this host. Sign-in itself (no session yet) is covered by the `Origin` check.
- **Default deny**: the middleware guards every `/console` path but sign-in and static files,
  as `handlers.api.auth` does for `/api/v1`.

The raw token never reaches the browser after sign-in, so page JavaScript cannot read it: the
pages call the API's code paths server-side, and the live event stream is proxied
(handlers/console/events.py).
"""

from __future__ import annotations

import hmac
from typing import Final
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from bot.appkeys import clock_key, settings_key, stores_key
from bot.domain.auth import BOOTSTRAP_ADMIN, Caller, hash_token, is_bootstrap_token
from bot.domain.config import AgentRecord
from bot.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StorageUnavailableError,
)
from handlers.auth_failures import RETRY_AFTER, begin_check
from handlers.client import from_loopback, is_https
from handlers.console.context import ConsoleUser, is_htmx, set_user
from handlers.console.render import error_page, render_fragment

log = structlog.get_logger(__name__)

PREFIX: Final = "/console"
SIGN_IN: Final = f"{PREFIX}/sign-in"
STATIC: Final = f"{PREFIX}/static"
COOKIE: Final = "deskline_console"
# Browsers accept a `__Secure-` cookie only with the Secure flag, from a secure origin.
SECURE_COOKIE: Final = "__Secure-deskline_console"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})

# Sent with every console response. No inline script or style is allowed: everything the pages
# run comes from /console/static.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_secure(request: web.Request) -> bool:
    """HTTPS, directly or behind the trusted TLS-terminating proxy (`trusted_proxy="fly"`:
    Fly's sets X-Forwarded-Proto); without one the header is ignored (handlers/client.py)."""
    return is_https(request)


def is_loopback(request: web.Request) -> bool:
    """A local run: the browser names a loopback host and the client is this machine (the
    Host header alone is the client's to write)."""
    host = (request.url.host or "").strip("[]").lower()
    return host in _LOOPBACK and from_loopback(request)


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if is_secure(request) else COOKIE


def set_session_cookie(request: web.Request, response: web.StreamResponse, sid: str) -> None:
    response.set_cookie(
        cookie_name(request),
        sid,
        path=PREFIX,
        httponly=True,
        secure=is_secure(request),
        samesite="Strict",
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        cookie_name(request), path=PREFIX, secure=is_secure(request), samesite="Strict"
    )


async def caller_for_token_hash(
    request: web.Request, token_hash: str
) -> tuple[Caller, AgentRecord | None] | None:
    """The caller a token digest authenticates, as the API's `authenticate` resolves it."""
    admin = request.app[settings_key].admin_token
    secret = admin.get_secret_value() if admin is not None else ""
    if secret and hmac.compare_digest(token_hash, hash_token(secret)):
        return BOOTSTRAP_ADMIN, None
    agent = await request.app[stores_key].agents.for_token(token_hash)
    if agent is None:
        return None
    return Caller(id=agent.id, role=agent.role, numbers=frozenset(agent.numbers)), agent


async def caller_for_token(
    request: web.Request, token: str
) -> tuple[Caller, AgentRecord | None] | None:
    """The caller of a presented token (bootstrap admin compared in constant time)."""
    admin = request.app[settings_key].admin_token
    if is_bootstrap_token(token, admin.get_secret_value() if admin else None):
        return BOOTSTRAP_ADMIN, None
    return await caller_for_token_hash(request, hash_token(token))


def _is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _is_public(path: str) -> bool:
    return path == SIGN_IN or path.startswith(STATIC + "/")


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site.

    `Origin` (sent by browsers on every POST) must name this host; without it,
    `Sec-Fetch-Site` must not be cross-site. Clients that send neither (scripts, tests) pass:
    they carry no ambient cookie of a victim.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin == "null":
            return False
        return urlsplit(origin).netloc.lower() == request.host.lower()
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


async def csrf_ok(request: web.Request, user: ConsoleUser) -> bool:
    """Whether a state-changing request carries the session's CSRF token."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    return presented is not None and hmac.compare_digest(presented, user.csrf)


def _sign_in_redirect(request: web.Request) -> web.StreamResponse:
    target = SIGN_IN
    if request.method == "GET" and request.path != PREFIX:
        target = str(request.app.router["console_sign_in"].url_for().with_query(next=request.path))
    if is_htmx(request) or request.method != "GET":
        # htmx follows HX-Redirect with a full page load, instead of swapping a sign-in page
        # into a fragment.
        return web.Response(
            status=401,
            text="Your session has ended: sign in again.",
            headers={"HX-Redirect": target},
        )
    raise web.HTTPSeeOther(target)


async def _resolve(request: web.Request, *, touch: bool = True) -> ConsoleUser | None:
    sid = request.cookies.get(cookie_name(request))
    if not sid:
        return None
    store = request.app[stores_key].console_sessions
    session = await store.get(sid, request.app[clock_key].now(), touch=touch)
    if session is None:
        return None
    found = await caller_for_token_hash(request, session.token_hash)
    if found is None:
        # The token was revoked or its agent deleted: the session goes with it.
        await store.delete(sid)
        log.info("console_session_revoked", caller=session.caller)
        return None
    caller, agent = found
    return ConsoleUser(caller=caller, session=session, agent=agent)


async def user_again(request: web.Request) -> ConsoleUser | None:
    """The user of `request` resolved anew from its session cookie, as the middleware resolved
    it: None once the session ended (signed out, expired, deleted) or its token was revoked.
    For answers that outlive the check at their start (the event stream). Does not push the
    session's idle TTL back: a page left open is not a use of the session."""
    return await _resolve(request, touch=False)


@web.middleware
async def console_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Guard every `/console` path: a live session for all but sign-in and static files, the
    CSRF token and a same-site origin on every state-changing request. Errors become HTML
    pages (or, for htmx, a short text the page shows), never the API's JSON."""
    if not _is_console(request.path):
        return await handler(request)
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, exc.status, exc.reason)
    except NotFoundError as exc:
        response = error_page(request, 404, str(exc) or "Not found.")
    except ForbiddenError as exc:
        # Services word their refusals for the API; a page starts a sentence.
        response = error_page(request, 403, exc.message[:1].upper() + exc.message[1:])
    except ConflictError as exc:
        response = error_page(request, 409, exc.message)
    except InvalidInputError as exc:
        response = error_page(request, 422, exc.message)
    except (StorageUnavailableError, RedisError, TimeoutError) as exc:
        log.warning("console_unavailable", error=type(exc).__name__)
        response = error_page(request, 503, "The desk's storage is unavailable: retry shortly.")
    except Exception:
        # Logged with its traceback for us; the page says only that it failed.
        log.exception("console_request_failed")
        response = error_page(request, 500, "Something went wrong on our side.")
    return response


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the security headers on every console answer, redirects and
    event streams included (a middleware would be too late for a stream it prepared)."""
    if not _is_console(request.path):
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(STATIC + "/"):
        response.headers.setdefault("Cache-Control", "no-store")


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    unsafe = request.method not in _SAFE_METHODS
    if unsafe and not same_origin(request):
        log.info("console_cross_site_refused", path=request.path)
        raise web.HTTPForbidden(reason="Cross-site request refused.")
    if _is_public(request.path):
        return await handler(request)
    user = await _resolve(request)
    if user is None:
        return _sign_in_redirect(request)
    if unsafe and not await csrf_ok(request, user):
        log.info("console_csrf_refused", path=request.path)
        raise web.HTTPForbidden(reason="This form has expired: reload the page and try again.")
    set_user(request, user)
    structlog.contextvars.bind_contextvars(caller=user.caller.id)
    return await handler(request)


# --- sign-in and sign-out -------------------------------------------------------------------


def _next_path(raw: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site: `//x`, `/\\x`)."""
    if not raw or "\\" in raw or raw.startswith("//"):
        return PREFIX
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not _is_console(parts.path) or _is_public(parts.path):
        return PREFIX
    return raw


def _transport_problem(request: web.Request) -> str | None:
    if is_secure(request) or is_loopback(request):
        return None
    return (
        "The console signs in over HTTPS only (or on localhost): over plain HTTP the session"
        " cookie would travel in clear."
    )


async def sign_in_page(request: web.Request) -> web.Response:
    """The sign-in form; an already signed-in user goes straight on."""
    if await _resolve(request) is not None:
        raise web.HTTPSeeOther(_next_path(request.query.get("next")))
    problem = _transport_problem(request)
    return render_sign_in(request, error=problem, status=200)


def render_sign_in(request: web.Request, *, error: str | None, status: int) -> web.Response:
    return render_fragment(
        request,
        "sign_in.html",
        {"error": error, "next": _next_path(request.query.get("next"))},
        status=status,
    )


async def sign_in(request: web.Request) -> web.Response:
    """Check an API token as the API does, start a session, set its cookie (303 onwards).

    401 with the form again for a wrong or revoked token; 429 (with `Retry-After`) for a
    client over its budget of failed authentications, the API's (handlers/auth_failures.py),
    before its token is checked: only failures count, never a sign-in that succeeds; 403 over
    plain HTTP away from localhost.
    """
    problem = _transport_problem(request)
    if problem is not None:
        return render_sign_in(request, error=problem, status=403)
    form = await request.post()
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    # Before the token is looked at: a client over its budget learns nothing from it.
    check = await begin_check(request, credential=bool(token))
    if check.wait_s:
        return _too_many_sign_ins(request, check.wait_s)
    found = await caller_for_token(request, token) if token else None
    if found is None:
        log.info("console_sign_in_refused")
        # An empty form checked nothing: only a token that was tried counts.
        wait_s = await check.failed() if token else 0
        if wait_s:
            return _too_many_sign_ins(request, wait_s)
        return render_sign_in(request, error="That token is not valid, or was revoked.", status=401)
    await check.passed()
    caller, _ = found
    session = await request.app[stores_key].console_sessions.create(
        hash_token(token), caller.id, request.app[clock_key].now()
    )
    log.info("console_signed_in", caller=caller.id, role=caller.role)
    next_raw = form.get("next")
    response = web.HTTPSeeOther(_next_path(next_raw if isinstance(next_raw, str) else None))
    set_session_cookie(request, response, session.id)
    raise response


def _too_many_sign_ins(request: web.Request, wait_s: int) -> web.Response:
    response = render_sign_in(
        request,
        error=f"Too many failed sign-ins: wait {wait_s} seconds and try again.",
        status=429,
    )
    response.headers[RETRY_AFTER] = str(wait_s)
    return response


async def sign_out(request: web.Request) -> web.Response:
    """End the session and clear its cookie (303 to sign-in). Idempotent."""
    sid = request.cookies.get(cookie_name(request))
    if sid:
        await request.app[stores_key].console_sessions.delete(sid)
    response = web.HTTPSeeOther(SIGN_IN)
    clear_session_cookie(request, response)
    raise response
