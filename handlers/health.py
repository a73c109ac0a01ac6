"""Operations endpoints: liveness, readiness (Redis reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from bot.appkeys import queue_key, settings_key, stores_key
from bot.domain.auth import bearer_token
from bot.runtime.metrics import exposition
from handlers.auth_failures import begin_check, too_many_failures
from handlers.middlewares import error_body

log = structlog.get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests; touches nothing else."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when Redis answers (with a warning when it could lose data), else 503.

    RELIABILITY.md lists the Redis settings deskline needs; this warns when two are missing.
    """
    redis = request.app[queue_key]
    try:
        async with asyncio.timeout(2):
            await redis.ping()
            info = await redis.info()  # the default sections: persistence and memory among them
    except (RedisError, TimeoutError, OSError) as exc:
        return web.json_response({"status": "unavailable", "redis": type(exc).__name__}, status=503)
    warnings = []
    if not int(info.get("aof_enabled", 0)):
        warnings.append(
            "Redis append-only persistence is off: queued jobs and claims are lost if Redis"
            " restarts (set appendonly yes)"
        )
    policy = info.get("maxmemory_policy", "noeviction")
    if policy != "noeviction":
        # Claims and queued jobs all carry a TTL, so even volatile-* policies would evict them.
        warnings.append(
            f"Redis may evict keys when full (maxmemory-policy {policy}): claims and queued"
            " jobs would be lost (set maxmemory-policy noeviction)"
        )
    return web.json_response({"status": "ok", "redis": "ok", "warnings": warnings})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: this process' HTTP metrics and the job counters shared through Redis.

    With `metrics_token` set, only for `Authorization: Bearer <metrics_token>`: 401 without it
    or with another (a wrong one counts as a failed authentication, and a client over that
    limit gets 429 before its token is checked). Unset, /metrics is public.
    """
    refusal = await _refuse_scraper(request)
    if refusal is not None:
        return refusal
    stats = request.app[stores_key].stats
    try:
        async with asyncio.timeout(2):
            jobs = await stats.job_counts()
            intake = await stats.intake_counts()
    except (RedisError, TimeoutError, OSError):
        jobs, intake = {}, {}
    return web.Response(body=exposition(jobs, intake), content_type="text/plain", charset="utf-8")


def _unauthorized(message: str) -> web.Response:
    response = error_body(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="deskline-metrics"'
    return response


async def _refuse_scraper(request: web.Request) -> web.Response | None:
    """None when /metrics may answer this request; else the 401 or 429 to send."""
    expected = request.app[settings_key].metrics_token
    if expected is None:
        return None
    presented = bearer_token(request.headers.get("Authorization"))
    check = await begin_check(request, credential=presented is not None)
    if check.wait_s:
        return too_many_failures(check.wait_s)
    if presented is None:
        return _unauthorized("missing bearer token (Authorization: Bearer <metrics token>)")
    # Header text may hold undecodable bytes (aiohttp keeps them as surrogates): compare bytes.
    # An empty configured token matches nothing (a bearer token is never empty).
    if hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), expected.get_secret_value().encode()
    ):
        await check.passed()
        return None
    log.info("metrics_token_rejected")
    wait_s = await check.failed()
    return too_many_failures(wait_s) if wait_s else _unauthorized("invalid metrics token")
