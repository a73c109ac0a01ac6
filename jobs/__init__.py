"""arq job functions. `FUNCTIONS` is the registry `bot.worker` hands to arq.

Every job is wrapped so that its outcome is counted in Redis (`deskline_jobs` on /metrics),
whichever worker process ran it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog
from arq import Retry
from arq.cron import CronJob, cron
from arq.worker import Function, func

from bot.runtime import queue
from bot.runtime.deps import Deps

log = structlog.get_logger(__name__)

deps_key: Final = "deps"

JobFn = Callable[..., Awaitable[Any]]


class GaveUp(Exception):
    """A job asked for a retry on its last allowed try; it is dead-lettered instead."""


def deps_from(ctx: dict[str, Any]) -> Deps:
    """The worker's dependencies (opened in `on_startup`)."""
    deps = ctx[deps_key]
    assert isinstance(deps, Deps)
    return deps


def _deadline_s(timeout_s: float) -> float:
    # Our own deadline comes a little before arq's: arq cancels a job at its timeout and fails
    # it for good, while the job sees only a CancelledError, the same as on a shutdown (which
    # arq retries), so the failure would go unrecorded: a reply cut off by a hanging Graph API
    # vanished with one log line (tests/faults/test_job_timeout.py). The margin leaves time to
    # record it.
    return timeout_s - min(1.0, timeout_s / 4)


def _counted(name: str, fn: JobFn, max_tries: int | None, timeout_s: float | None = None) -> JobFn:
    """Count each outcome, and keep a job that failed for good as a dead letter.

    arq retries only on `Retry`; any other exception, a `Retry` on the last allowed try, or
    running out of time (`timeout_s`, else the worker's job timeout) ends the job. Those land
    in the dead letters (`python -m bot dead-letters list|retry`), so that no failure is
    silent. A cancellation (worker shutdown) is arq's to handle: it runs the job again.
    """

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        deps = deps_from(ctx)
        stats = deps.stores.stats
        try:
            async with asyncio.timeout(_deadline_s(timeout_s or deps.settings.job_timeout_s)):
                result = await fn(ctx, *args, **kwargs)
        except Retry as exc:
            tries = max_tries or deps.settings.max_tries
            if int(ctx.get("job_try", 1)) >= tries:
                await stats.count_job(name, "failure")
                await _bury(deps, ctx, name, args, kwargs, f"gave up after {tries} tries")
                # Not a Retry: arq would reschedule the job only to fail it once more, before
                # it runs, as "max retries exceeded" (and bot.worker would bury it twice).
                raise GaveUp(f"{name} gave up after {tries} tries") from exc
            await stats.count_job(name, "retry")
            raise exc
        except asyncio.CancelledError:
            await stats.count_job(name, "cancelled")
            raise
        except Exception as exc:
            await stats.count_job(name, "failure")
            await _bury(deps, ctx, name, args, kwargs, f"{type(exc).__name__}: {exc}")
            raise
        await stats.count_job(name, "success")
        return result

    return run


async def _bury(
    deps: Deps, ctx: dict[str, Any], name: str, args: Any, kwargs: Any, error: str
) -> None:
    await bury(
        deps,
        job_id=ctx.get("job_id"),
        function=name,
        args=args,
        kwargs=kwargs,
        tries=ctx.get("job_try"),
        error=error,
    )


async def bury(
    deps: Deps,
    *,
    job_id: str | None,
    function: str,
    args: Any,
    kwargs: Any,
    tries: Any,
    error: str,
) -> None:
    """Keep a job that failed for good as a dead letter (`python -m bot dead-letters`)."""
    entry = {
        "id": job_id,
        "function": function,
        "args": list(args),
        "kwargs": dict(kwargs),
        "tries": tries,
        "error": error[:2000],
        "at": deps.clock.now().isoformat(),
    }
    log.error("job_dead_lettered", function=function, job_id=job_id, error=error[:200])
    await deps.stores.dead_letters.add(entry, int(deps.clock.now().timestamp() * 1000))


def _register(name: str, fn: JobFn, *, max_tries: int | None = None, **options: Any) -> Function:
    counted = _counted(name, fn, max_tries, options.get("timeout"))
    return func(counted, name=name, max_tries=max_tries, **options)  # type: ignore[arg-type]


def _functions() -> list[Function]:
    # Imported here so that `jobs.inbound` can import `deps_from` from this package.
    from jobs import after_hours, inbound, receipts, replies, statuses, tickets

    return [
        _register(queue.PROCESS_INBOUND_MESSAGE, inbound.process_inbound_message),
        _register(queue.APPLY_STATUS_UPDATE, statuses.apply_status_update),
        _register(queue.SEND_REPLY, replies.send_reply, max_tries=12),
        _register(queue.LOG_AFTER_HOURS_CONTACT, after_hours.log_after_hours_contact),
        _register(queue.REQUEST_CALLBACK, after_hours.request_callback),
        _register(queue.RUN_CALLBACK, after_hours.run_callback, max_tries=20),
        _register(queue.RESCHEDULE_CALLBACKS, after_hours.reschedule_callbacks),
        _register(queue.OPEN_TICKET, tickets.open_ticket),
        _register(queue.DRAIN_QUEUE, tickets.drain_queue),
        # Few tries: blue ticks that come minutes late tell the customer little.
        _register(queue.MARK_READ, receipts.mark_read, max_tries=3),
    ]


FUNCTIONS: Final[list[Function]] = _functions()


def _cron_jobs() -> list[CronJob]:
    from jobs import tickets

    return [
        # Twice a minute: the ticket timeouts are set in minutes. arq's unique cron job ids
        # make one worker run each tick, however many run the schedule.
        cron(
            _counted(queue.SWEEP_TICKETS, tickets.sweep_tickets, 1),  # type: ignore[arg-type]
            name=queue.SWEEP_TICKETS,
            second={0, 30},
            max_tries=1,
        ),
    ]


# Scheduled by the worker (bot/worker.py), never enqueued by name.
CRON_JOBS: Final[list[CronJob]] = _cron_jobs()
