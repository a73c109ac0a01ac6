"""Middlewares: request context for logs, metrics per route, and errors as JSON 4xx bodies."""

from __future__ import annotations

import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from bot.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageUnavailableError,
    WebhookPayloadError,
)
from bot.metrics import HTTP_LATENCY, HTTP_REQUESTS

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
    503: "unavailable",
}


def _route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id into the log context; count and time the request per route."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
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
    except WebhookPayloadError as exc:
        log.info("webhook_rejected", reason=exc.message, field=exc.field)
        return error_body(400, "bad_request", exc.message, exc.field)
    except InvalidInputError as exc:
        return error_body(422, exc.code, exc.message, exc.field)
    except NotFoundError as exc:
        return error_body(404, "not_found", str(exc) or "not found")
    except ConflictError as exc:
        return error_body(409, exc.code, exc.message)
    except (StorageUnavailableError, RedisError, TimeoutError) as exc:
        log.warning("request_unavailable", error=type(exc).__name__)
        return error_body(503, "unavailable", "storage unavailable, retry later")
    except Exception:
        # Logged with its traceback for us; the client learns only that it failed.
        log.exception("request_failed")
        return error_body(500, "internal", "internal error")
