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
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.runtime.autopipeline import AutoPipelineRedis
from bot.runtime.queue import job_deserializer
from storage import keys, lua

arq_log = logging.getLogger("arq.worker")

# The shortest time between two polls of the queue when finishing jobs wake the poll loop.
MIN_POLL_S: Final = 0.005
# How often an idle worker polls by default (Settings.worker_idle_poll_s).
IDLE_POLL_S: Final = 5.0


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
    - An idle worker (nothing due, nothing running) does not poll every `poll_delay`: its
      last poll set the idle flag in the same script (storage/lua/worker_poll.lua), and it
      waits for the wake-up that the next enqueue publishes (storage/keys.py WORKER_IDLE),
      sleeping no later than the next deferred job is due (the same script reads its score) or
      the next cron tick, and at most `idle_poll` seconds (for enqueues that do not publish,
      such as arq's own `enqueue_job`). About 1.7 M Redis commands a day (20 polls a second)
      became about one a second, and a job enqueued into an idle worker still starts within
      milliseconds. Burst workers (tests) poll as arq does.
    Jobs enqueued by anyone (arq's `enqueue_job`, bot.runtime.queue) and the keys they use are
    unchanged, so these workers mix with stock arq workers on one queue.
    """

    def __init__(
        self,
        *args: Any,
        on_job_dead: Callable[[dict[str, Any], DeadJob], Awaitable[None]] | None = None,
        idle_poll: float = IDLE_POLL_S,
        **kwargs: Any,
    ) -> None:
        """arq's `Worker`, plus `on_job_dead`: called for each job arq failed before it ran
        (the wiring keeps them as dead letters; the runtime knows nothing of the jobs), and
        `idle_poll`: seconds between two polls while idle and no wake-up arrives."""
        super().__init__(*args, **kwargs)
        self.on_job_dead = on_job_dead
        self.idle_poll_s = idle_poll
        self._wake: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        # Set by each wake-up message; cleared by a poll that may make the worker idle.
        self._woken = asyncio.Event()
        # Whether the last poll found nothing while nothing ran (and so set the idle flag), and
        # then when the earliest queued job is due (ms), if any.
        self._idle = False
        self._next_due_ms: float | None = None

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
        self._poll_script = lua.register(self.pool, "worker_poll")
        self._slot_freed = asyncio.Event()
        self._job_finished = asyncio.Event()
        arq_log.info(
            "Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions)
        )
        await log_redis_info(self.pool, arq_log.info)
        self.ctx["redis"] = self.pool
        if not self.burst:
            # Subscribed before the first poll can set the idle flag: no wake-up is missed.
            self._wake = self.pool.pubsub()
            await self._wake.subscribe(keys.WORKER_IDLE)
            self._listener = asyncio.create_task(self._listen_for_wake_ups())
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
            if self._idle:
                await self._wait_for_wake_up()
                continue
            await _wait_event(self._job_finished, self.poll_delay_s)
            # Under load jobs finish all the time: poll at most every MIN_POLL_S.
            pause = min(MIN_POLL_S, self.poll_delay_s)
            await asyncio.sleep(max(0.0, polled_at + pause - loop.time()))

    async def _listen_for_wake_ups(self) -> None:
        """Read the wake-up channel for as long as the worker runs (a task of its own, so that
        the idle wait is a plain event with a timeout)."""
        assert self._wake is not None
        async for message in self._wake.listen():
            if message.get("type") == "message":
                self._woken.set()
        raise RedisConnectionError("the wake-up subscription ended")

    async def _wait_for_wake_up(self) -> None:
        """Idle: wait for an enqueue's wake-up, at most `idle_poll_s`.

        Raises redis' ConnectionError when the subscription's connection is lost, like a
        failed poll (the entrypoint then starts a new worker).
        """
        assert self._listener is not None  # set whenever `_idle` can be (not in burst mode)
        woken = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait(
                {woken, self._listener},
                timeout=self._idle_timeout_s(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            woken.cancel()
        if self._listener.done():
            self._listener.result()  # the subscription's error

    def _idle_timeout_s(self) -> float:
        """How long an idle worker may sleep: `idle_poll_s`, but no later than the next job
        deferred to a later time (its score, from the last poll) or the next cron tick (which
        arq queues up to a second ahead), so that neither starts late."""
        timeout = self.idle_poll_s
        now_ms = timestamp_ms()
        if self._next_due_ms is not None:
            timeout = min(timeout, (self._next_due_ms - now_ms) / 1000)
        ticks = [job.next_run for job in self.cron_jobs if job.next_run is not None]
        if ticks:
            ahead = max(self.poll_delay_s, 0.5)  # arq's cron window (Worker.heart_beat)
            until_tick = min(ticks).timestamp() - now_ms / 1000
            timeout = min(timeout, until_tick - ahead)
        return max(timeout, MIN_POLL_S)

    async def _poll_iteration(self) -> None:
        """arq's `_poll_iteration`, with one script as the poll: it reads the due job ids and,
        when this worker would go idle and none is due, sets the idle flag in the same step
        (storage/lua/worker_poll.lua), so that no enqueue slips between the two."""
        count = self.queue_read_limit
        if self.burst and self.max_burst_jobs >= 0:
            burst_jobs_remaining = self.max_burst_jobs - self._jobs_started()
            if burst_jobs_remaining < 1:
                return
            count = min(burst_jobs_remaining, count)
        self._idle = False
        self._next_due_ms = None
        if self.allow_pick_jobs and self.job_counter < self.max_jobs:
            arm = self._listener is not None and self.job_counter == 0
            flag_ttl_ms = int(self.idle_poll_s * 3000) if arm else 0
            if arm:
                # Wake-ups from before this poll are answered by it; only later ones count.
                self._woken.clear()
            job_ids, next_score = await self._poll_script(
                keys=[self.queue_name, keys.WORKER_IDLE],
                args=[timestamp_ms(), self._queue_read_offset, count, flag_ttl_ms],
            )
            self._idle = arm and not job_ids
            self._next_due_ms = float(next_score) if next_score else None
            await self.start_jobs(job_ids)
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # a failure in run_job itself must surface
        ticks = [job.next_run for job in self.cron_jobs]
        await self.heart_beat()
        for job, tick in zip(self.cron_jobs, ticks, strict=True):
            if tick is not None and job.next_run != tick:
                # Queued just now, due at `tick`: after this poll read the queue's next score.
                due_ms = tick.timestamp() * 1000
                if self._next_due_ms is None or due_ms < self._next_due_ms:
                    self._next_due_ms = due_ms

    async def close(self) -> None:
        """arq's `close`, and the wake-up subscription's connection back to the pool."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener  # its error, if any, was the poll loop's to raise
        wake, self._wake = self._wake, None
        if wake is not None:
            with contextlib.suppress(Exception):  # a connection already lost: nothing to close
                await wake.aclose()  # type: ignore[no-untyped-call]
        await super().close()

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
                if not await _wait_event(self._slot_freed, self.poll_delay_s):
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


async def _wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for `event` at most `timeout_s`; whether it was set.

    Not `asyncio.wait_for(event.wait(), ...)`: on Python 3.11 wait_for swallows a
    cancellation that arrives as the event is set (python/cpython#86296). A job finishing as
    SIGTERM arrives did exactly that: arq's cancel of the poll loop was lost and the worker
    kept running. `asyncio.wait` never swallows one.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout_s)
    finally:
        waiter.cancel()
    return event.is_set()


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
