"""Middlewares: request context for logs, metrics per route, and errors as JSON 4xx bodies;
and the headers every response carries (`nosniff`)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from bot.domain.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StorageUnavailableError,
    WebhookPayloadError,
)
from bot.runtime.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger(__name__)


def error_body(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}

# A client's X-Request-Id is kept (to correlate with its own logs) only when it is short and
# plain: it goes into every log line of the request and back into a response header.
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def request_id_of(request: web.Request) -> str:
    """The client's `X-Request-Id` when it is 1-64 characters of A-Z a-z 0-9 . _ -, else a
    fresh random one (16 hex digits)."""
    presented = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex[:16]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id into the log context; count and time the request per route."""
    request_id = request_id_of(request)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_name(request)
        HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes `{"error": {"code", "message", "field"}}`; never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return error_body(exc.status, _CODES.get(exc.status, "error"), exc.reason)
    except BadRequestError as exc:
        return error_body(400, "bad_request", exc.message, exc.field)
    except WebhookPayloadError as exc:
        log.info("webhook_rejected", reason=exc.message, field=exc.field)
        return error_body(400, "bad_request", exc.message, exc.field)
    except InvalidInputError as exc:
        return error_body(422, exc.code, exc.message, exc.field)
    except NotFoundError as exc:
        return error_body(404, "not_found", str(exc) or "not found")
    except ForbiddenError as exc:
        return error_body(403, "forbidden", exc.message)
    except ConflictError as exc:
        return error_body(409, exc.code, exc.message)
    except (StorageUnavailableError, RedisError, TimeoutError) as exc:
        log.warning("request_unavailable", error=type(exc).__name__)
        return error_body(503, "unavailable", "storage unavailable, retry later")
    except Exception:
        # Logged with its traceback for us; the client learns only that it failed.
        log.exception("request_failed")
        return error_body(500, "internal", "internal error")


async def nosniff(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: `X-Content-Type-Options: nosniff` on every response the app
    prepares, whatever made it (a handler, a raised HTTP error, a 404 for no route, static
    files, event streams): a browser must never guess a type, for instance render as HTML the
    text/plain challenge the webhook echoes back."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
