"""The composition root: `open_deps(settings)` builds and closes everything both processes use.

The `Deps` it yields is defined in bot/runtime/deps.py, where services and jobs can import it
(re-exported here for the wiring).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
from arq.connections import ArqRedis
from redis.asyncio import BlockingConnectionPool

from bot.domain.clock import Clock, SystemClock
from bot.runtime.deps import Deps
from bot.runtime.outbox import GraphOutbox, Outbox, SandboxOutbox
from bot.runtime.queue import Intake, job_deserializer, job_serializer
from bot.settings import Settings
from storage import Stores

__all__ = ["Deps", "open_deps", "open_redis", "redis_url"]


# Attempts of a Graph read somebody waits for (the template list): one retry, then the cached
# copy answers (bot/services/templates.py).
GRAPH_READ_ATTEMPTS: Final = 2


def redis_url(settings: Settings) -> str:
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set (python -m bot run starts an embedded Redis)")
    return settings.redis_url


def open_redis(settings: Settings) -> ArqRedis:
    """An arq-capable client on a *blocking* pool.

    redis-py's default pool raises as soon as it is exhausted (seen as 500s at 128 concurrent
    webhooks); a blocking pool waits up to the timeout instead, and a timeout becomes a 503.
    """
    pool = BlockingConnectionPool.from_url(
        redis_url(settings),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
    return ArqRedis(
        pool,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        expires_extra_ms=settings.job_expires_s * 1000,
    )


@asynccontextmanager
async def open_deps(
    settings: Settings, *, redis: ArqRedis | None = None, clock: Clock | None = None
) -> AsyncIterator[Deps]:
    """Build the dependencies; close what was opened here (a passed-in `redis` stays open)."""
    own_redis = redis is None
    client = open_redis(settings) if redis is None else redis
    timeout = aiohttp.ClientTimeout(total=settings.graph_timeout_s, connect=5)
    http = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)
    stores = Stores.on(client)
    try:
        outbox: Outbox
        graph: GraphOutbox | None = None
        if settings.access_token is None:
            outbox = SandboxOutbox(stores.sandbox)
        else:
            graph = GraphOutbox(
                http,
                base_url=settings.graph_api_url,
                version=settings.graph_api_version,
                token=settings.access_token.get_secret_value(),
                attempts=GRAPH_READ_ATTEMPTS,
            )
            outbox = GraphOutbox(
                http,
                base_url=settings.graph_api_url,
                version=settings.graph_api_version,
                token=settings.access_token.get_secret_value(),
                attempts=settings.graph_retry_attempts,
                backoff_s=settings.graph_retry_backoff_s,
            )
        yield Deps(
            settings=settings,
            redis=client,
            http=http,
            outbox=outbox,
            stores=stores,
            intake=Intake(
                client,
                job_expires_s=settings.job_expires_s,
                chunk_items=settings.intake_chunk_items,
            ),
            clock=clock or SystemClock(),
            graph=graph,
        )
    finally:
        await http.close()
        if own_redis:
            await client.aclose(close_connection_pool=True)
