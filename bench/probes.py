"""Completion probes: when is an inbound message "done" in the end-to-end stages?

The end-to-end stages post messages and ask a probe when each one finished:

- `job` (`JobDoneProbe`): done when the message's `process_inbound_message` job finished;
- `reply` (`ReplyProbe`, the default): the bench number is configured closed, and a message is
  done when its after-hours row is stored and a fake Graph API accepted its after-hours reply,
  i.e. the whole path from webhook receipt to reply sent (issue 9);
- `ticket` (`TicketProbe`): the bench number is configured always open, and a message is done
  when the ticket it opened is stored (the in-service-hours path: no auto-reply, no Graph call).

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

from bot.domain.config import AgentInput
from bot.runtime.embedded import free_port
from bot.runtime.queue import OPEN_TICKET, PROCESS_INBOUND_MESSAGE, inbound_job_id
from storage import keys
from storage.agents import AgentsStore
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
        await _stop(self._task, self._client)


async def _stop(task: asyncio.Task[None] | None, client: aioredis.Redis | None) -> None:
    """Stop a probe's event listener and close its client."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if client is not None:
        await client.aclose()


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
      wamid comes from `biz_opaque_callback_data`: jobs/inbound.py (`_reply_request`) tags every
      auto-reply with its natural key, `<wamid>:<kind>`. Only as a fallback, for a body without
      the tag (none is expected today), the recipient names it: `to` is `+<wa_id>`, and the row
      tells which wamid that customer sent.

    A message is done at the later of the two. Each message must come from a customer of its
    own: the throttle answers a contact once per closed period, so a repeat customer's second
    message gets a row but no reply (and the recipient fallback needs one message per customer).
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


# Always open: every message is in service hours, so it opens (or continues) a ticket; no
# auto-reply (the welcome reply is off by default), no after-hours row, no Graph call.
OPEN_NUMBER: dict[str, Any] = {
    "display_name": "Bench",
    "timezone": "UTC",
    "service_hours": {"always_open": True},
}
# The one agent online on every served number, with deskline's default number of slots.
BENCH_AGENT = "bench-agent"
BENCH_AGENT_SLOTS = 3


class TicketProbe:
    """Done = the ticket the message opened is stored.

    `start` configures every served number (`keys.NUMBERS`) as always open through
    `NumbersStore.put`, so each message is routed to a ticket (`open_ticket` job, after
    `process_inbound_message`), and puts one agent online on them, with the default 3 slots.

    Signal: the ticket-opening script (storage/tickets.py `_OPEN`) writes the ticket hash, its
    message list and history, the contact's open-ticket pointer, the queue and index entries,
    and, in the same Lua call, `SET dl:tknk:<number>:<natural key> <ticket id> EX ...`
    (`keys.ticket_request`), whose natural key is the inbound wamid (jobs/inbound.py
    `_ticket_request`). Redis delivers a script's keyspace events only once the script is
    done, so the `set` event on that key (`notify-keyspace-events K$`, one pattern
    subscription per number: only those events reach the runner) means the whole ticket is
    stored, and its time is the event's arrival. The wamid is in the key: nothing to resolve.
    A redelivered message or a retried job finds the marker and writes nothing (no second
    event); a second `set` on one marker would be a message attached twice.

    Each message comes from a customer of its own, so that each opens a ticket of its own
    (a repeat customer's message would only be attached to their open ticket). The agent takes
    the first 3 tickets and every later one waits in the number's queue (`dl:tkq`), as at a
    busy desk: that is fine for the probe (a ticket is stored whether it waits or is assigned)
    and more realistic than no agent at all, with which the script skips routing entirely;
    with one, every new ticket pays the capacity check of the queue drain, and the first ones
    the routing itself (slot set, history, the agent's event stream).

    `problems` reports messages without a ticket, messages that got two or more tickets (by
    the tickets' `natural_key`), messages attached to a ticket another message opened, tickets
    for no posted message, failed jobs, and an agent not holding its slots' worth of tickets.
    """

    name = "ticket"
    distinct_customers = True

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._db = _db_of(redis_url)
        self._done: dict[str, float] = {}
        self._number_of: dict[str, str] = {}  # wamid -> the number whose marker it got
        self._repeated = 0
        self._prefixes: list[bytes] = []
        self._numbers: list[str] = []
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    def worker_env(self) -> dict[str, str]:
        return {}

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)
        numbers = NumbersStore(self._client)
        now = dt.datetime.now(dt.UTC)
        raw_numbers = await self._client.smembers(keys.NUMBERS)  # type: ignore[misc]
        self._numbers = sorted(r.decode() if isinstance(r, bytes) else str(r) for r in raw_numbers)
        for pnid in self._numbers:
            await numbers.put(pnid, OPEN_NUMBER, actor="bench", at=now)
        agents = AgentsStore(self._client)
        agent = AgentInput(
            name="Bench agent", numbers=tuple(self._numbers), slots=BENCH_AGENT_SLOTS
        )
        await agents.put(BENCH_AGENT, agent, at=now)
        await agents.set_status(BENCH_AGENT, "online", at=now)
        await self._client.config_set("notify-keyspace-events", "K$")
        space = f"__keyspace@{self._db}__:"
        self._prefixes = [(space + keys.ticket_request(n, "")).encode() for n in self._numbers]
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(*(p.decode() + "*" for p in self._prefixes))
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        prefixes = list(zip(self._prefixes, self._numbers, strict=True))
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message["data"] != b"set":  # SET ... EX also says expire
                    continue
                channel = message["channel"]
                for prefix, pnid in prefixes:
                    if channel.startswith(prefix):
                        wamid = channel[len(prefix) :].decode()
                        if wamid in self._done:
                            self._repeated += 1
                        else:
                            self._done[wamid] = time.monotonic()
                            self._number_of[wamid] = pnid
                        break
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def completed(self) -> Mapping[str, float]:
        return self._done

    async def _tickets(self) -> dict[str, str]:
        """Every ticket in Redis: ticket id -> its natural key (SCAN, then pipelined HGETs)."""
        assert self._client is not None
        prefix = keys.ticket("")
        singletons = {keys.TICKET_SEQ, keys.ASSIGN_SEQ, keys.LAST_ASSIGNED, keys.TICKET_HOLDERS}
        ids = []
        async for raw in self._client.scan_iter(match=prefix + "*", count=1000):
            key = raw.decode()
            if key not in singletons:
                ids.append(key[len(prefix) :])
        out: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            async with self._client.pipeline(transaction=False) as pipe:
                for ticket_id in part:
                    pipe.hget(keys.ticket(ticket_id), "natural_key")
                answers = await pipe.execute(raise_on_error=False)
            for ticket_id, answer in zip(part, answers, strict=True):
                if isinstance(answer, bytes):
                    out[ticket_id] = answer.decode()
        return out

    async def _markers(self, message_ids: Sequence[str]) -> dict[str, str]:
        """wamid -> the ticket id its request marker names (messages seen done only)."""
        assert self._client is not None
        seen = [m for m in message_ids if m in self._number_of]
        out: dict[str, str] = {}
        for start in range(0, len(seen), 1000):
            part = seen[start : start + 1000]
            async with self._client.pipeline(transaction=False) as pipe:
                for wamid in part:
                    pipe.get(keys.ticket_request(self._number_of[wamid], wamid))
                answers = await pipe.execute()
            out.update({w: a.decode() for w, a in zip(part, answers, strict=True) if a})
        return out

    async def problems(self, message_ids: Sequence[str]) -> list[str]:
        assert self._client is not None
        out = []
        missing = [m for m in message_ids if m not in self._done]
        if missing:
            out.append(f"{len(missing)} messages without a ticket (first: {missing[0]})")
        if self._repeated:
            out.append(f"{self._repeated} ticket request markers written twice")
        tickets = await self._tickets()
        by_key: dict[str, list[str]] = {}
        for ticket_id, natural_key in tickets.items():
            by_key.setdefault(natural_key, []).append(ticket_id)
        posted = set(message_ids)
        twice = sorted(k for k, ids in by_key.items() if len(ids) > 1 and k in posted)
        if twice:
            out.append(f"{len(twice)} messages got two or more tickets (first: {twice[0]})")
        stray = sorted(k for k in by_key if k not in posted)
        if stray:
            out.append(f"{len(stray)} tickets opened for no posted message (first: {stray[0]})")
        markers = await self._markers(message_ids)
        attached = sorted(w for w, t in markers.items() if tickets.get(t) != w)
        if attached:
            out.append(
                f"{len(attached)} messages attached to a ticket they did not open"
                f" (first: {attached[0]} on {markers[attached[0]]})"
            )
        stats = await self._client.hgetall(keys.JOB_STATS)  # type: ignore[misc]
        for function in (PROCESS_INBOUND_MESSAGE, OPEN_TICKET):
            failed = int(stats.get(f"{function}:failure".encode(), 0))
            if failed:
                out.append(f"{failed} {function} jobs failed for good")
        held = await self._client.scard(keys.agent_tickets(BENCH_AGENT))  # type: ignore[misc]
        expected = min(BENCH_AGENT_SLOTS, len(tickets))
        if held != expected:
            out.append(f"the online agent holds {held} tickets ({expected} expected)")
        return out

    async def stop(self) -> None:
        await _stop(self._task, self._client)


# `--probe NAME` picks one; each takes the bench Redis URL.
PROBES: dict[str, Callable[[str], CompletionProbe]] = {
    "job": JobDoneProbe,
    "reply": ReplyProbe,
    "ticket": TicketProbe,
}
