"""Automatic pipelining: Redis calls issued concurrently share one round trip.

A worker runs up to `max_jobs` jobs at once, and each job makes a dozen small Redis calls in
turn. Sent one by one, every call is a round trip of its own: a socket write, a read, the
connection pool's bookkeeping, about 0.2 ms of client CPU each, which py-spy showed to be
half of the worker's time (BENCHMARKS.md, "What limits throughput"). Here a call joins a
queue instead; one flusher writes everything queued in one write and hands each caller its
own reply or its own error. While a round trip is in flight, new calls wait for the next
one, so batches grow with load, and an idle client sends on the next turn of the event loop.

A call is a single command, or a whole pipeline (`client.pipeline(...)`, with or without a
transaction) when it is executed: its commands go out together, a transaction wrapped in its
own MULTI/EXEC, exactly as if it had had a connection to itself.

What a caller sees does not change:
- each command, script or transaction stays atomic on its own and gets exactly the reply
  (response callbacks included) it would get alone; the round trip itself is not a
  transaction, so nothing became atomic together that was not before;
- one caller's calls keep their order (each awaits its reply before sending the next); the
  calls of different callers were never ordered relative to each other;
- an error reply (NOSCRIPT, WRONGTYPE, a Lua error) fails its own command only; a lost
  connection or a timeout fails every call of that round trip, as it would have failed each
  of them sent alone, and the connection is dropped.
Commands that block or depend on state kept per connection (BLPOP, SELECT, ...) bypass the
queue, and so does a pipeline that WATCHes keys (its reads must run before its MULTI).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import ExecAbortError, ResponseError

# Never queued: they block the shared connection, or depend on state kept per connection.
DIRECT_COMMANDS: Final = frozenset(
    {
        "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE",
        "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "UNWATCH", "WAIT", "WATCH",
        "XREAD", "XREADGROUP",
    }
)  # fmt: skip
# Commands per round trip (a whole pipeline is never split): bounds one write and one read.
MAX_BATCH: Final = 512

Command = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(slots=True)
class _Call:
    """One caller's share of a round trip: a command (`single`), or a pipeline's commands."""

    commands: list[Command]
    transaction: bool = False
    single: bool = False
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AutoPipelineRedis(ArqRedis):
    """An `ArqRedis` whose commands and pipelines, issued concurrently, share round trips."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: deque[_Call] = deque()
        self._flusher: asyncio.Task[None] | None = None
        # Read by tests and benchmarks: how well calls are being shared.
        self.round_trips = 0
        self.commands_sent = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.split(" ", 1)[0].upper() in DIRECT_COMMANDS or self.connection is not None:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await self._submit(_Call([(args, options)], single=True))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return SharedPipeline(
            self, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )

    async def _submit(self, call: _Call) -> Any:
        self._queued.append(call)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await call.future

    async def _flush(self) -> None:
        batch: list[_Call] = []
        try:
            while self._queued:
                batch, size = [], 0
                while self._queued and (not batch or size < MAX_BATCH):
                    call = self._queued.popleft()
                    if not call.future.done():  # else its caller was cancelled meanwhile
                        batch.append(call)
                        size += len(call.commands)
                if batch:
                    await self._round_trip(batch)
        except BaseException as exc:
            # Only a cancellation of the flusher itself gets here (a round trip's errors go
            # to its callers): nobody may be left waiting on a future no one will resolve.
            for call in (*batch, *self._queued):
                if not call.future.done():
                    call.future.set_exception(exc if isinstance(exc, Exception) else _shut_down())
            self._queued.clear()
            raise
        finally:
            self._flusher = None

    async def _round_trip(self, batch: list[_Call]) -> None:
        self.round_trips += 1
        self.commands_sent += sum(len(call.commands) for call in batch)
        try:
            conn: Connection = await self.connection_pool.get_connection()
        except Exception as exc:
            _fail(batch, exc)
            return
        try:
            packed: list[tuple[Any, ...]] = []
            for call in batch:
                if call.transaction:
                    packed.append(("MULTI",))
                packed.extend(args for args, _ in call.commands)
                if call.transaction:
                    packed.append(("EXEC",))
            await conn.send_packed_command(conn.pack_commands(packed))
            for call in batch:
                reply = await (self._read_transaction if call.transaction else self._read)(
                    conn, call.commands
                )
                if call.future.done():
                    continue
                if not call.single:
                    call.future.set_result(reply)
                elif isinstance(reply[0], Exception):
                    call.future.set_exception(reply[0])
                else:
                    call.future.set_result(reply[0])
        except BaseException as exc:
            # The connection broke, or the flusher was cancelled, mid-way: replies may be left
            # unread on it, so it must not go back to the pool as it is (redis-py drops a
            # connection whose read was interrupted; this also covers an interrupted write).
            await conn.disconnect(nowait=True)
            _fail(batch, exc if isinstance(exc, Exception) else _shut_down())
            if not isinstance(exc, Exception):
                raise
        finally:
            await self.connection_pool.release(conn)

    async def _read(self, conn: Connection, commands: list[Command]) -> list[Any]:
        replies: list[Any] = []
        for args, options in commands:
            try:
                replies.append(await self.parse_response(conn, args[0], **options))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def _read_transaction(self, conn: Connection, commands: list[Command]) -> Any:
        """MULTI, QUEUED per command, then EXEC's replies with their callbacks (as redis-py's
        Pipeline._execute_transaction reads them). An aborted transaction (a command refused
        while queueing) is an exception for the whole pipeline, as in redis-py."""
        errors: list[tuple[int, ResponseError]] = []
        for i in range(len(commands) + 1):  # MULTI's OK, then each command's QUEUED
            try:
                await self.parse_response(conn, "_")
            except ResponseError as exc:
                errors.append((i - 1, exc))
        try:
            replies = await self.parse_response(conn, "_")
        except ExecAbortError as exc:
            return errors[0][1] if errors else exc
        out: list[Any] = []
        for reply, (args, options) in zip(replies, commands, strict=True):
            if not isinstance(reply, Exception) and args[0] in self.response_callbacks:
                options.pop("keys", None)
                reply = self.response_callbacks[args[0]](reply, **options)
                if inspect.isawaitable(reply):
                    reply = await reply
            out.append(reply)
        return out


class SharedPipeline(Pipeline):
    """A pipeline whose `execute()` joins its client's shared round trips.

    A pipeline that WATCHes keys, or carries scripts registered on it, runs as redis-py runs
    it, on a connection of its own (its reads happen before its MULTI).
    """

    def __init__(self, client: AutoPipelineRedis, *args: Any) -> None:
        super().__init__(*args)
        self._client = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        original = list(self.command_stack)
        stack: list[Command] = [(args, dict(options)) for args, options in original]
        if self.watching or self.scripts or self.connection is not None:
            return await super().execute(raise_on_error)
        if not stack:
            return []
        transaction = bool(self.is_transaction or self.explicit_transaction)
        try:
            replies = await self._client._submit(_Call(stack, transaction=transaction))
        finally:
            await self.reset()  # type: ignore[no-untyped-call]
        if isinstance(replies, Exception):  # the transaction was aborted
            raise replies
        if raise_on_error:
            self.raise_first_error(original, replies)
        return list(replies)


def _fail(batch: list[_Call], exc: Exception) -> None:
    for call in batch:
        if not call.future.done():
            call.future.set_exception(exc)


def _shut_down() -> Exception:
    return ConnectionError("the Redis client was shut down with this call queued")
