"""Completion probes: when is an inbound message "done" in the end-to-end stages?

The end-to-end stages post messages and ask a probe when each one finished. Today the pipeline
ends at `process_inbound_message`, so `JobDoneProbe` says a message is done when its arq job
finished. When tickets, after-hours rows and replies land, a probe that waits for "ticket or
after-hours row stored and reply accepted by the fake Graph API" replaces it without touching the
stages: implement `CompletionProbe` and register it in `PROBES` (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from bot.queue import PROCESS_INBOUND_MESSAGE, inbound_job_id
from storage import keys


class CompletionProbe(Protocol):
    """Watches one end-to-end run; `completed` maps message ids to `time.monotonic()` of done."""

    name: str

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the worker processes (e.g. a fake Graph API's URL and token)."""
        ...

    async def start(self) -> None:
        """Begin watching; called on an empty Redis, before the first message is posted."""
        ...

    def completed(self) -> Mapping[str, float]:
        """Message ids seen done so far, with the monotonic time they were seen."""
        ...

    async def problems(self, message_ids: Sequence[str]) -> list[str]:
        """After the run: what is wrong (failed jobs, missing effects); empty when all is well."""
        ...

    async def stop(self) -> None: ...


class JobDoneProbe:
    """Done = the message's `process_inbound_message` job finished.

    arq deletes `arq:job:<job id>` when a job finishes (deskline keeps no results), so the probe
    listens to Redis keyspace events for `del` and takes the time each inbound job key goes.
    That is exact to the event's delivery (well under a millisecond here), costs nothing per
    message in the worker, and needs `notify-keyspace-events` on the bench's private Redis. The
    job outcome counters (`keys.JOB_STATS`) then tell a success from a final failure.
    """

    name = "job"

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._db = int(redis_url.rsplit("/", 1)[-1]) if redis_url.count("/") > 2 else 0
        self._prefix = ("arq:job:" + inbound_job_id("")).encode()
        self._done: dict[str, float] = {}
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._baseline = 0

    def worker_env(self) -> dict[str, str]:
        return {}

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)
        await self._client.config_set("notify-keyspace-events", "Eg")
        self._baseline = await self._successes()
        pubsub = self._client.pubsub()
        await pubsub.subscribe(f"__keyevent@{self._db}__:del")
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        prefix, cut = self._prefix, len(self._prefix)
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                key = message["data"]
                if isinstance(key, bytes) and key.startswith(prefix):
                    self._done[key[cut:].decode()] = time.monotonic()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def completed(self) -> Mapping[str, float]:
        return self._done

    async def _successes(self) -> int:
        assert self._client is not None
        raw = await self._client.hget(keys.JOB_STATS, f"{PROCESS_INBOUND_MESSAGE}:success")  # type: ignore[misc]
        return int(raw or 0)

    async def problems(self, message_ids: Sequence[str]) -> list[str]:
        out = []
        missing = [m for m in message_ids if m not in self._done]
        if missing:
            out.append(f"{len(missing)} messages never finished (first: {missing[0]})")
        successes = await self._successes() - self._baseline
        if successes != len(message_ids):
            out.append(f"{successes} jobs succeeded for {len(message_ids)} messages")
        return out

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()


# `--probe NAME` picks one; each takes the bench Redis URL.
PROBES: dict[str, Callable[[str], CompletionProbe]] = {"job": JobDoneProbe}
