"""Operations endpoints: liveness, readiness (Redis reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.exceptions import RedisError

from bot.keys import queue_key, stores_key
from bot.metrics import exposition


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
    """Prometheus text: this process' HTTP metrics and the job counters shared through Redis."""
    stats = request.app[stores_key].stats
    try:
        async with asyncio.timeout(2):
            jobs = await stats.job_counts()
            intake = await stats.intake_counts()
    except (RedisError, TimeoutError, OSError):
        jobs, intake = {}, {}
    return web.Response(body=exposition(jobs, intake), content_type="text/plain", charset="utf-8")
