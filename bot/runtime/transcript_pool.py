"""The web process's PDF render workers: child processes that render transcripts off the
event loop, at most `transcript_workers` at once, each killed when it runs out of time or
nobody waits for it any more.

Why processes, and these ones. A render is pure CPU in Python (fpdf2): in a thread it holds the
GIL, so the webhooks wait, and a thread cannot be stopped. A `ProcessPoolExecutor` cannot
cancel a running task either, and killing one of its workers breaks the whole pool. So each
worker is a plain child, `python -m bot.runtime.transcript_pool`, started with
`asyncio.create_subprocess_exec`: fork + exec at once (no copy of the event loop, the Redis
connections or other threads' locks survives into it; file descriptors are closed), the same
isolation as multiprocessing's "spawn" without re-importing the web's `__main__`. It gets no
`DESKLINE_*` nor `REDIS_URL` variable: it needs no secret, and renders text strangers wrote. It
talks over its stdin/stdout (one length-prefixed pickle in, one status byte and a
length-prefixed PDF or error out) and runs at a lower CPU priority than the web process.

Workers start lazily with the first transcript (the web process does not load fpdf2 itself,
BENCHMARKS.md budgets it at 120 MB), stay for the next one, and leave after `IDLE_S` without
work or `RENDERS_PER_WORKER` renders, so memory a large ticket took goes back to the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import pickle
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

import structlog
from aiohttp import web

from bot.domain.errors import DesklineError
from bot.runtime.transcript import Transcript
from bot.settings import Settings

log = structlog.get_logger(__name__)

# A request waits this long at most for a free worker, then gets a 503 with Retry-After.
SLOT_WAIT_S: Final = 5.0
# How often a running render checks that its client is still connected.
CLIENT_CHECK_S: Final = 0.25
# A worker left without work this long exits; a worker exits after this many renders.
IDLE_S: Final = 60.0
RENDERS_PER_WORKER: Final = 100
# CPU priority of a worker, added to the web process's (higher is lower priority).
NICENESS: Final = 10
_OK: Final = 0
_FAILED: Final = 1
_LENGTH: Final = 8  # bytes of a length prefix, big-endian


class TranscriptUnavailableError(DesklineError):
    """No transcript now: answer 503 with `code`, and `retry_after_s` as Retry-After."""

    code = "unavailable"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class TranscriptBusyError(TranscriptUnavailableError):
    """Every worker stayed busy for `SLOT_WAIT_S`."""

    code = "transcript_busy"


class TranscriptTimeoutError(TranscriptUnavailableError):
    """The render took longer than `transcript_timeout_s`; its worker was killed."""

    code = "transcript_timeout"


class TranscriptAbandonedError(DesklineError):
    """The client left before the PDF was ready; its worker was killed."""


@dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    renders: int = 0
    idle_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None


class TranscriptPool:
    """At most `workers` renders at once, each within `timeout_s`; see the module docstring.

    Use `async with pool.slot()` first (a free worker, or `TranscriptBusyError`), then read
    what the transcript needs, then `await pool.render(...)` inside the block: requests that
    wait for a slot hold no ticket's messages meanwhile.
    """

    def __init__(self, workers: int, timeout_s: float, *, slot_wait_s: float = SLOT_WAIT_S):
        self._slots = asyncio.Semaphore(workers)
        self._timeout_s = timeout_s
        self._slot_wait_s = slot_wait_s
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        # Workers leaving (a task must be referenced until it ends).
        self._retiring: set[asyncio.Future[None]] = set()
        self._closed = False

    def pids(self) -> list[int]:
        """Process ids of the running workers (idle or rendering)."""
        return [w.pid for w in (*self._idle, *self._busy) if w.alive()]

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `workers` render slots for the block.

        Raises:
            TranscriptBusyError: no slot came free within `slot_wait_s`.
        """
        if self._closed:
            raise TranscriptBusyError("transcripts are shutting down", retry_after_s=5)
        try:
            async with asyncio.timeout(self._slot_wait_s):
                await self._slots.acquire()
        except TimeoutError:
            log.warning("transcript_refused", reason="busy")
            raise TranscriptBusyError(
                "every transcript worker is busy, retry later",
                retry_after_s=math.ceil(self._slot_wait_s),
            ) from None
        try:
            yield
        finally:
            self._slots.release()

    async def render(
        self, transcript: Transcript, *, abandoned: Callable[[], bool] | None = None
    ) -> bytes:
        """The transcript's PDF, rendered by a worker; call it inside `slot()`.

        The worker is killed (the next render starts another) when the render takes longer
        than `timeout_s`, when `abandoned()` turns true (checked every `CLIENT_CHECK_S`), or
        when the calling task is cancelled.

        Raises:
            TranscriptTimeoutError: past `timeout_s`.
            TranscriptAbandonedError: `abandoned()` turned true.
            TranscriptUnavailableError: the worker died (killed by the system, out of memory).
            RuntimeError: the renderer raised (a bug); the worker stays.
        """
        if abandoned is not None and abandoned():
            raise TranscriptAbandonedError("the client left")
        started = time.monotonic()
        ticket_id = transcript.ticket.id
        worker = await self._take()
        stopped = "cancelled"  # what ended the render early; "" when it answered
        try:
            status, payload = await self._await(worker, transcript, started, abandoned)
            stopped = ""
        except TranscriptTimeoutError:
            stopped = "timeout"
            raise
        except TranscriptAbandonedError:
            stopped = "client_left"
            raise
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            stopped = "worker_died"
            raise TranscriptUnavailableError(
                "the transcript worker stopped, retry later", retry_after_s=5
            ) from exc
        finally:
            elapsed_ms = round((time.monotonic() - started) * 1000)
            if stopped:
                # The render must not go on for nobody: its worker is killed.
                await self._kill(worker)
                log.warning(
                    "transcript_render_stopped",
                    reason=stopped,
                    ticket_id=ticket_id,
                    pid=worker.pid,
                    elapsed_ms=elapsed_ms,
                )
            else:
                self._give_back(worker)
        if status != _OK:
            log.error("transcript_render_failed", ticket_id=ticket_id, error=payload.decode())
            raise RuntimeError("the transcript renderer failed")
        log.info("transcript_rendered", ticket_id=ticket_id, elapsed_ms=elapsed_ms)
        return payload

    async def _await(
        self,
        worker: _Worker,
        transcript: Transcript,
        started: float,
        abandoned: Callable[[], bool] | None,
    ) -> tuple[int, bytes]:
        task = asyncio.ensure_future(_exchange(worker.process, transcript))
        try:
            deadline = started + self._timeout_s
            while not task.done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TranscriptTimeoutError(
                        f"the transcript took longer than {self._timeout_s:g} s",
                        retry_after_s=60,
                    )
                await asyncio.wait({task}, timeout=min(CLIENT_CHECK_S, left))
                if not task.done() and abandoned is not None and abandoned():
                    raise TranscriptAbandonedError("the client left")
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    async def close(self) -> None:
        """Kill every worker; renders still running end with `TranscriptUnavailableError`."""
        self._closed = True
        for worker in [*self._idle, *self._busy]:
            await self._kill(worker)
        self._idle.clear()
        if self._retiring:
            await asyncio.wait(self._retiring)

    async def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.idle_timer is not None:
                worker.idle_timer.cancel()
            if worker.alive():
                self._busy.add(worker)
                return worker
            await self._kill(worker)  # reaps it
        worker = _Worker(await _spawn())
        log.info("transcript_worker_started", pid=worker.pid)
        self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        worker.renders += 1
        if self._closed or worker.renders >= RENDERS_PER_WORKER:
            self._retire(worker)
            return
        loop = asyncio.get_running_loop()
        worker.idle_timer = loop.call_later(IDLE_S, self._retire_idle, worker)
        self._idle.append(worker)

    def _retire_idle(self, worker: _Worker) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        # EOF on its stdin: the worker exits by itself; reaped in the background.
        task = asyncio.ensure_future(self._kill(worker, grace_s=5))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _kill(self, worker: _Worker, *, grace_s: float = 0) -> None:
        self._busy.discard(worker)
        process = worker.process
        if process.stdin is not None:
            process.stdin.close()
        if grace_s:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await process.wait()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


def _child_env() -> dict[str, str]:
    # The package's parent directory first: `bot` imports from wherever this one came from.
    root = str(Path(__file__).resolve().parents[1])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DESKLINE_") and k not in ("REDIS_URL", "PYTHONPATH")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return env


async def _spawn() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.runtime.transcript_pool",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_child_env(),
        # Several MB of PDF come back at once.
        limit=1 << 20,
    )


async def _exchange(
    process: asyncio.subprocess.Process, transcript: Transcript
) -> tuple[int, bytes]:
    assert process.stdin is not None
    assert process.stdout is not None
    data = pickle.dumps(transcript, protocol=pickle.HIGHEST_PROTOCOL)
    process.stdin.write(len(data).to_bytes(_LENGTH, "big") + data)
    await process.stdin.drain()
    head = await process.stdout.readexactly(1 + _LENGTH)
    payload = await process.stdout.readexactly(int.from_bytes(head[1:], "big"))
    return head[0], payload


# --- the worker process ----------------------------------------------------------------------


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    """`python -m bot.runtime.transcript_pool`: render transcripts read from stdin until it
    closes."""
    os.nice(NICENESS)
    # The protocol keeps the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = sys.stdin.buffer
    from bot.runtime.transcript import render_transcript

    while (head := _read(source, _LENGTH)) is not None:
        data = _read(source, int.from_bytes(head, "big"))
        if data is None:
            break
        try:
            # The parent, the web process, wrote it: pickle is safe on this pipe.
            status, payload = _OK, render_transcript(pickle.loads(data))  # noqa: S301
        except Exception as exc:  # a bug in the renderer: reported, the worker carries on
            status, payload = _FAILED, f"{type(exc).__name__}: {exc}".encode()
        out.write(bytes([status]) + len(payload).to_bytes(_LENGTH, "big") + payload)
        out.flush()


# --- wiring ----------------------------------------------------------------------------------

# The web application's pool (bot.app appends `transcripts_ctx` to its cleanup context).
transcripts_key = web.AppKey("deskline.transcripts", TranscriptPool)


def transcripts_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup-context entry that puts a pool on the app and kills its workers at cleanup.
    No process starts here: the first transcript starts one."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = TranscriptPool(settings.transcript_workers, settings.transcript_timeout_s)
        app[transcripts_key] = pool
        try:
            yield
        finally:
            await pool.close()

    return ctx


if __name__ == "__main__":
    main()
