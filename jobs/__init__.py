"""arq job functions. `FUNCTIONS` is the registry `bot.worker` hands to arq.

Every job is wrapped so that its outcome is counted in Redis (`deskline_jobs` on /metrics),
whichever worker process ran it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog
from arq import Retry
from arq.worker import Function, func

from bot import queue
from bot.deps import Deps

log = structlog.get_logger(__name__)

deps_key: Final = "deps"

JobFn = Callable[..., Awaitable[Any]]


def deps_from(ctx: dict[str, Any]) -> Deps:
    """The worker's dependencies (opened in `on_startup`)."""
    deps = ctx[deps_key]
    assert isinstance(deps, Deps)
    return deps


def _counted(name: str, fn: JobFn) -> JobFn:
    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        stats = deps_from(ctx).stores.stats
        try:
            result = await fn(ctx, *args, **kwargs)
        except Retry:
            await stats.count_job(name, "retry")
            raise
        except BaseException:
            await stats.count_job(name, "failure")
            raise
        await stats.count_job(name, "success")
        return result

    return run


def _register(name: str, fn: JobFn, **options: Any) -> Function:
    return func(_counted(name, fn), name=name, **options)  # type: ignore[arg-type]


def _functions() -> list[Function]:
    # Imported here so that `jobs.inbound` can import `deps_from` from this package.
    from jobs import inbound, replies, statuses

    return [
        _register(queue.PROCESS_INBOUND_MESSAGE, inbound.process_inbound_message),
        _register(queue.APPLY_STATUS_UPDATE, statuses.apply_status_update),
        _register(queue.SEND_REPLY, replies.send_reply, max_tries=12),
    ]


FUNCTIONS: Final[list[Function]] = _functions()
