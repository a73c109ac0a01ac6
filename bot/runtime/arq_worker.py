"""arq's worker, specialised: fewer Redis round trips per job, same protocol and guarantees.

The only module that knows arq's worker internals (`Worker.main`, `start_jobs`, `finish_job`,
the key layout of `arq.constants`): an arq upgrade means re-reading this file and
bot/runtime/queue.py (the job format).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from arq.connections import create_pool, log_redis_info
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms, to_ms
from arq.worker import Worker

from bot.runtime.autopipeline import AutoPipelineRedis
from bot.runtime.queue import job_deserializer
from storage import lua

arq_log = logging.getLogger("arq.worker")

# The shortest time between two polls of the queue when finishing jobs wake the poll loop.
MIN_POLL_S: Final = 0.005


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job arq failed before deskline's code ran (what `on_job_dead` is told)."""

    job_id: str
    function: str
    args: Any
    kwargs: Any
    tries: Any
    error: str


class DesklineWorker(Worker):
    """arq's worker with fewer round trips per job; same Redis protocol, same guarantees.

    - Its Redis client is an `AutoPipelineRedis`: the commands and transactions of concurrent
      jobs (and arq's own) share round trips.
    - A poll's jobs start with one script (storage/lua/worker_start_jobs.lua) instead of a
      WATCH/MULTI transaction each, and slots are refilled as jobs finish rather than at the
      next poll.
    - A job finishes with one script (storage/lua/worker_finish_job.lua), sent through the
      shared round trips.
    - The poll loop wakes early when a job finishes: a finished job has usually just enqueued
      the next one (the first job enqueues its effect jobs), which then starts within
      milliseconds instead of waiting up to a poll delay at each step of a message's way.
    Jobs enqueued by anyone (arq's `enqueue_job`, bot.runtime.queue) and the keys they use are
    unchanged, so these workers mix with stock arq workers on one queue.
    """

    def __init__(
        self,
        *args: Any,
        on_job_dead: Callable[[dict[str, Any], DeadJob], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        """arq's `Worker`, plus `on_job_dead`: called for each job arq failed before it ran
        (the wiring keeps them as dead letters; the runtime knows nothing of the jobs)."""
        super().__init__(*args, **kwargs)
        self.on_job_dead = on_job_dead

    async def main(self) -> None:
        """arq's `Worker.main`, with the early wake-up above in place of its fixed sleep."""
        if self._pool is None:
            plain = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
            self._pool = AutoPipelineRedis(
                plain.connection_pool,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        # arq's key layout stays here (arq.constants): the scripts get the queue, the job keys
        # and the in-progress prefix as KEYS and ARGV, so the registry knows only deskline's keys.
        self._start_script = lua.register(self.pool, "worker_start_jobs")
        self._finish_script = lua.register(self.pool, "worker_finish_job")
        self._slot_freed = asyncio.Event()
        self._job_finished = asyncio.Event()
        arq_log.info(
            "Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions)
        )
        await log_redis_info(self.pool, arq_log.info)
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        loop = asyncio.get_running_loop()
        while True:
            polled_at = loop.time()
            self._job_finished.clear()
            await self._poll_iteration()
            if self.burst:
                if 0 <= self.max_burst_jobs <= self._jobs_started():
                    await asyncio.gather(*self.tasks.values())
                    return
                if await self.pool.zcard(self.queue_name) == 0:
                    await asyncio.gather(*self.tasks.values())
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._job_finished.wait(), self.poll_delay_s)
            # Under load jobs finish all the time: poll at most every MIN_POLL_S.
            pause = min(MIN_POLL_S, self.poll_delay_s)
            await asyncio.sleep(max(0.0, polled_at + pause - loop.time()))

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Start the due jobs among `job_ids`, a batch per free slots, one script per batch.

        Unlike arq, which returns to its poll loop as soon as every slot is taken (and then
        sleeps `poll_delay` while slots free up), this keeps filling slots as jobs finish,
        for up to one poll delay without a free slot, so a backlog never waits on the clock.
        """
        pending = job_ids
        while pending:
            free = self.max_jobs - self.job_counter
            if free <= 0:
                self._slot_freed.clear()
                try:
                    await asyncio.wait_for(self._slot_freed.wait(), self.poll_delay_s)
                except TimeoutError:
                    return  # back to the poll loop (health check, fresh ids)
                continue
            chunk, pending = pending[:free], pending[free:]
            started = await self._start_script(
                keys=[self.queue_name],
                args=[
                    timestamp_ms(),
                    int(self.in_progress_timeout_s * 1000),
                    in_progress_key_prefix,
                    *chunk,
                ],
            )
            for raw_id, raw_score in zip(started[::2], started[1::2], strict=True):
                # Never waits: at most `free` jobs start, and the semaphore has that many left.
                await self.sem.acquire()
                self.job_counter += 1
                job_id = raw_id.decode()
                task = self.loop.create_task(self.run_job(job_id, int(float(raw_score))))
                task.add_done_callback(self._job_done)
                self.tasks[job_id] = task

    def _job_done(self, _: asyncio.Task[None]) -> None:
        self._release_sem_dec_counter_on_complete()
        self._slot_freed.set()
        self._job_finished.set()

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        if result_data:  # a kept result: arq's own transaction writes it
            await super().finish_job(
                job_id, finish, result_data, result_timeout_s, keep_result_forever,
                incr_score, keep_in_progress,
            )  # fmt: skip
            return
        await self._finish_script(
            keys=_job_keys(job_id, self.queue_name),
            args=[
                "1" if finish else "0",
                incr_score or "",
                "" if keep_in_progress is None else to_ms(keep_in_progress),
                job_id,
            ],
        )

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """A job arq failed before deskline's code ran: it expired while queued, its tries ran
        out through restarts (a job that kills its worker every time), or it names no known
        function. Kept as a dead letter too, so that no failure is silent."""
        if self.keep_result_forever or self.keep_result_s > 0:
            await super().finish_failed_job(job_id, result_data)
        else:
            keys = _job_keys(job_id, self.queue_name)
            await self._finish_script(keys=keys, args=["1", "", "", job_id])
        if self.on_job_dead is not None:
            data = _result_fields(result_data)
            await self.on_job_dead(
                self.ctx,
                DeadJob(
                    job_id=job_id,
                    function=str(data.get("f") or "<unknown>"),
                    args=data.get("a") or [],
                    kwargs=data.get("k") or {},
                    tries=data.get("t"),
                    error=str(data.get("r") or "failed before it started"),
                ),
            )


def _result_fields(result_data: bytes | None) -> dict[str, Any]:
    """arq's serialized result ({'f': function, 'a': args, 'r': error, ...}), or {}."""
    try:
        data = job_deserializer(result_data) if result_data else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _job_keys(job_id: str, queue_name: str) -> list[str]:
    return [
        in_progress_key_prefix + job_id,
        retry_key_prefix + job_id,
        job_key_prefix + job_id,
        queue_name,
        abort_jobs_ss,
    ]
