"""Completion probes: when is an inbound message "done" in the end-to-end stages?

The end-to-end stages post messages and ask a probe when each one finished:

- `job` (`JobDoneProbe`): done when the message's `process_inbound_message` job finished;
- `reply` (`ReplyProbe`, the default): the bench number is configured closed, and a message is
  done when its after-hours row is stored and a fake Graph API accepted its after-hours reply,
  i.e. the whole path from webhook receipt to reply sent (issue 9).

A new probe implements `CompletionProbe` and registers in `PROBES` (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiohttp import web

from bot.embedded import free_port
from bot.queue import PROCESS_INBOUND_MESSAGE, inbound_job_id
from storage import keys
from storage.numbers import NumbersStore
from tests.graph_fake import FakeGraphAPI


class CompletionProbe(Protocol):
    """Watches one end-to-end run; `completed` maps message ids to `time.monotonic()` of done."""

    name: str
    # True when each message needs a customer of its own (the pools are then built so).
    distinct_customers: bool

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
    distinct_customers = False

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


def _db_of(redis_url: str) -> int:
    return int(redis_url.rsplit("/", 1)[-1]) if redis_url.count("/") > 2 else 0


# Always closed (no open day, `always_open` false), plain text reply: every message gets an
# after-hours row and, once per contact and closed period, the after-hours reply.
CLOSED_NUMBER: dict[str, Any] = {
    "display_name": "Bench",
    "timezone": "UTC",
    "service_hours": {"always_open": False, "weekly": {}},
    "after_hours": {"message": "We are closed. Back soon.", "notify_next_service_hour": False},
}
GRAPH_TOKEN = "bench-graph-token"  # noqa: S105 -- the fake Graph API only checks it is set
# Meta's upgraded per-number throughput (WHATSAPP.md 10). deskline's default (80/s, the standard
# tier) would cap replies far below the 500 messages/s target on the one bench number.
GRAPH_RATE_PER_SECOND = 1000


class ReplyProbe:
    """Done = the message's after-hours row exists and the fake Graph API accepted its reply.

    `start` configures every served number (`keys.NUMBERS`, which the runner fills before) as
    always closed with a plain text after-hours message, and serves a `FakeGraphAPI` in this
    process (the runner's, on core 1); `worker_env` points the workers at it, with a token
    (otherwise deskline keeps replies in its sandbox) and Meta's upgraded rate.

    - Row: the after-hours script SADDs the wamid to the row's `:seen` set in the same Lua call
      that writes the row, so a keyspace `sadd` event on `dl:ah:<number>:<row>:seen` marks the
      row stored (its time is the event's arrival); the set's wamids and the row's `wa_id` are
      then read in pipelined batches, off the timing path.
    - Reply: a middleware on the fake takes the time each `/messages` POST is answered 200. The
      wamid comes from `biz_opaque_callback_data` when the body has one (`<wamid>:<kind>`);
      auto-replies carry none today (bot/decide.py builds them untagged), so otherwise from the
      recipient: `to` is `+<wa_id>`, and the row tells which wamid that customer sent.

    A message is done at the later of the two. Each message must come from a customer of its
    own: the throttle answers a contact once per closed period, so a repeat customer's second
    message gets a row but no reply (and matching by recipient needs one message per customer).
    """

    name = "reply"
    distinct_customers = True

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._db = _db_of(redis_url)
        self._port = free_port()
        self.fake = FakeGraphAPI(url=f"http://127.0.0.1:{self._port}")
        self._rows: dict[str, float] = {}
        self._replies: dict[str, float] = {}  # wamid -> reply accepted
        self._by_recipient: dict[str, float] = {}  # wa_id -> untagged reply accepted
        self._wamid_of: dict[str, str] = {}  # wa_id -> the wamid of its row
        self._done: dict[str, float] = {}
        self._refused = 0
        self._repeated = 0
        self._seen_keys: list[tuple[bytes, float]] = []
        self._wake = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def worker_env(self) -> dict[str, str]:
        return {
            "DESKLINE_ACCESS_TOKEN": GRAPH_TOKEN,
            "DESKLINE_GRAPH_API_URL": self.fake.url,
            "DESKLINE_GRAPH_RATE_PER_SECOND": str(GRAPH_RATE_PER_SECOND),
        }

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)
        numbers = NumbersStore(self._client)
        now = dt.datetime.now(dt.UTC)
        for raw in await self._client.smembers(keys.NUMBERS):  # type: ignore[misc]
            pnid = raw.decode() if isinstance(raw, bytes) else str(raw)
            await numbers.put(pnid, CLOSED_NUMBER, actor="bench", at=now)
        app = self.fake.app()
        app.middlewares.append(self._timestamp)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        await self._client.config_set("notify-keyspace-events", "Es")
        pubsub = self._client.pubsub()
        await pubsub.subscribe(f"__keyevent@{self._db}__:sadd")
        self._tasks = [
            asyncio.create_task(self._listen(pubsub)),
            asyncio.create_task(self._resolve_rows()),
        ]

    @web.middleware
    async def _timestamp(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if request.method == "POST" and request.path.endswith("/messages"):
            at = time.monotonic()
            if response.status != 200:
                self._refused += 1
                return response
            body = await request.json()
            tag = body.get("biz_opaque_callback_data")
            if tag:
                self._replied(tag.rsplit(":", 1)[0], at)
            else:
                wa_id = str(body.get("to", "")).lstrip("+")
                if wa_id in self._by_recipient:
                    self._repeated += 1
                    return response
                self._by_recipient[wa_id] = at
                if wa_id in self._wamid_of:
                    self._replied(self._wamid_of[wa_id], at)
        return response

    def _replied(self, wamid: str, at: float) -> None:
        if wamid in self._replies:
            self._repeated += 1
            return
        self._replies[wamid] = at
        self._complete(wamid)

    def _complete(self, wamid: str) -> None:
        row, reply = self._rows.get(wamid), self._replies.get(wamid)
        if row is not None and reply is not None and wamid not in self._done:
            self._done[wamid] = max(row, reply)

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        prefix, suffix = b"dl:ah:", b":seen"
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                key = message["data"]
                if isinstance(key, bytes) and key.startswith(prefix) and key.endswith(suffix):
                    self._seen_keys.append((key, time.monotonic()))
                    self._wake.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _resolve_rows(self) -> None:
        """Which wamids each new row holds: SMEMBERS of the `:seen` sets, batched."""
        assert self._client is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._seen_keys = self._seen_keys, []
            for start in range(0, len(batch), 500):
                part = batch[start : start + 500]
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, _ in part:
                        pipe.smembers(key.decode())
                        pipe.hget(key[: -len(b":seen")].decode(), "wa_id")
                    answers = await pipe.execute()
                for i, (_, at) in enumerate(part):
                    wamids, raw_wa_id = answers[2 * i], answers[2 * i + 1]
                    wa_id = raw_wa_id.decode() if raw_wa_id else ""
                    for raw in sorted(wamids):
                        wamid = raw.decode()
                        self._rows.setdefault(wamid, at)
                        self._wamid_of.setdefault(wa_id, wamid)
                        if (
                            wa_id in self._by_recipient
                            and self._wamid_of[wa_id] == wamid
                            and wamid not in self._replies
                        ):
                            self._replied(wamid, self._by_recipient[wa_id])
                        self._complete(wamid)

    def completed(self) -> Mapping[str, float]:
        return self._done

    async def problems(self, message_ids: Sequence[str]) -> list[str]:
        await asyncio.sleep(0.2)  # let the row resolver catch up with the last events
        out = []
        no_row = [m for m in message_ids if m not in self._rows]
        no_reply = [m for m in message_ids if m not in self._replies]
        if no_row:
            out.append(f"{len(no_row)} messages without an after-hours row (first: {no_row[0]})")
        if no_reply:
            out.append(f"{len(no_reply)} messages without a reply (first: {no_reply[0]})")
        if self._refused:
            out.append(f"the fake Graph API refused {self._refused} sends")
        if self._repeated:
            out.append(f"{self._repeated} replies sent more than once")
        return out

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.aclose()


# `--probe NAME` picks one; each takes the bench Redis URL.
PROBES: dict[str, Callable[[str], CompletionProbe]] = {"job": JobDoneProbe, "reply": ReplyProbe}
