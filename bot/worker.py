"""arq worker settings: the job registry, hooks and limits, on the same composition root.

The worker class itself, arq's specialised for fewer round trips, is
bot/runtime/arq_worker.py's `DesklineWorker`; it takes these settings.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import structlog
from arq.connections import RedisSettings

from bot.deps import open_deps, redis_url
from bot.domain.clock import Clock
from bot.runtime.arq_worker import DeadJob, DesklineWorker
from bot.runtime.deps import Deps
from bot.runtime.queue import job_deserializer, job_serializer
from bot.settings import Settings
from jobs import CRON_JOBS, FUNCTIONS, bury, deps_key

__all__ = ["DesklineWorker", "worker_settings"]


def worker_settings(
    settings: Settings, *, clock: Clock | None = None, cron: bool | None = None
) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` (arq accepts a dict as settings).

    `cron` schedules the periodic jobs (jobs.CRON_JOBS); by default only with the real clock:
    arq's cron runs on wall-clock time, so a worker on an injected clock (tests) would fire
    sweeps at random moments of a test. Tests call the sweep themselves instead.
    """

    async def on_startup(ctx: dict[str, Any]) -> None:
        stack = AsyncExitStack()
        ctx["deps_stack"] = stack
        ctx[deps_key] = await stack.enter_async_context(
            open_deps(settings, redis=ctx["redis"], clock=clock)
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        stack: AsyncExitStack | None = ctx.get("deps_stack")
        if stack is not None:
            await stack.aclose()

    async def on_job_start(ctx: dict[str, Any]) -> None:
        # run_job awaits this hook, then creates the job's task, which copies this context.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(job_id=ctx["job_id"], job_try=ctx["job_try"])

    async def on_job_dead(ctx: dict[str, Any], job: DeadJob) -> None:
        # A job arq failed before it ran: counted and kept as a dead letter like any other.
        deps = ctx.get(deps_key)
        if isinstance(deps, Deps):
            await deps.stores.stats.count_job(job.function, "failure")
            await bury(
                deps,
                job_id=job.job_id,
                function=job.function,
                args=job.args,
                kwargs=job.kwargs,
                tries=job.tries,
                error=job.error,
            )

    return {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS if (clock is None if cron is None else cron) else [],
        "redis_settings": RedisSettings.from_dsn(redis_url(settings)),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "on_job_start": on_job_start,
        "max_jobs": settings.max_jobs,
        "job_timeout": settings.job_timeout_s,
        "max_tries": settings.max_tries,
        "keep_result": 0,
        "poll_delay": settings.worker_poll_delay_s,
        "expires_extra_ms": settings.job_expires_s * 1000,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "handle_signals": True,
        # DesklineWorker's own option (arq's Worker does not take it).
        "on_job_dead": on_job_dead,
    }
