"""Automatic pipelining: single Redis commands issued concurrently share one round trip.

A worker runs up to `max_jobs` jobs at once, and each job makes a dozen small Redis calls in
turn. Sent one by one, every call is a round trip of its own: a socket write, a read, the
connection pool's bookkeeping, about 0.2 ms of client CPU each, which py-spy showed to be
half of the worker's time (BENCHMARKS.md, "What limits throughput"). Here a call joins a
queue instead; one flusher writes everything queued as one pipeline and hands each caller
its own reply or its own error. While a round trip is in flight, new calls wait for the next
one, so batches grow with load, and an idle client sends on the next turn of the event loop.

What a caller sees does not change:
- each command stays atomic on its own and gets exactly the reply (response callbacks
  included) it would get sent alone; the pipeline is not a transaction, and nothing became
  atomic together that was not before;
- one caller's commands keep their order (each awaits its reply before sending the next);
  the commands of different callers were never ordered relative to each other;
- an error reply (NOSCRIPT, WRONGTYPE, a Lua error) fails its own command only; a lost
  connection or a timeout fails every command of that round trip, as it would have failed
  each of them sent alone.
Commands that block or change the connection's state (BLPOP, WATCH, SELECT, ...) bypass the
queue, and so do pipelines and transactions, which keep their own connection.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from arq.connections import ArqRedis

# Never queued: they block the shared connection, or depend on state kept per connection.
DIRECT_COMMANDS: Final = frozenset(
    {
        "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE",
        "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "UNWATCH", "WAIT", "WATCH",
        "XREAD", "XREADGROUP",
    }
)  # fmt: skip
# Commands per round trip: bounds the size of one write and of one reply to parse.
MAX_BATCH: Final = 512

_Call = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class AutoPipelineRedis(ArqRedis):
    """An `ArqRedis` whose single commands, issued concurrently, share round trips."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None
        # Read by tests and benchmarks: how well commands are being shared.
        self.round_trips = 0
        self.commands_sent = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.split(" ", 1)[0].upper() in DIRECT_COMMANDS or self.connection is not None:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, options, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[_Call] = []
        try:
            while self._queued:
                batch = [call for call in self._queued[:MAX_BATCH] if not call[2].done()]
                del self._queued[:MAX_BATCH]
                if batch:
                    await self._round_trip(batch)
                batch = []
        except BaseException as exc:
            # Only a cancellation of the flusher itself gets here (a round trip's errors go
            # to its callers): nobody may be left waiting on a future no one will resolve.
            for _, _, future in (*batch, *self._queued):
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else _cancelled())
            self._queued.clear()
            raise
        finally:
            self._flusher = None

    async def _round_trip(self, batch: list[_Call]) -> None:
        pipe = self.pipeline(transaction=False)
        for args, options, _ in batch:
            pipe.pipeline_execute_command(*args, **options)  # type: ignore[no-untyped-call]
        self.round_trips += 1
        self.commands_sent += len(batch)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection or the round trip failed: every caller's
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _cancelled() -> Exception:
    return ConnectionError("the Redis client was shut down with this command queued")
