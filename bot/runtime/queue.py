"""Typed enqueue functions: the only place job names and job ids are spelled.

Jobs are serialised as JSON (not arq's default pickle), so that a queued job never depends on
today's class layout and the intake script can write arq-compatible jobs itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from arq.connections import ArqRedis
from arq.constants import (
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from bot.domain.actions import LogAfterHoursContact, RequestCallback, Subject
from bot.domain.envelope import IntakeItem
from bot.domain.replies import ReplyRequest
from bot.domain.tickets import TicketRequest
from storage import keys, lua
from storage.sends import SendsStore

# Job names are what sits in Redis: renaming one is a migration (tests/test_registry.py).
PROCESS_INBOUND_MESSAGE: Final = "process_inbound_message"
APPLY_STATUS_UPDATE: Final = "apply_status_update"
SEND_REPLY: Final = "send_reply"
LOG_AFTER_HOURS_CONTACT: Final = "log_after_hours_contact"
REQUEST_CALLBACK: Final = "request_callback"
RUN_CALLBACK: Final = "run_callback"
RESCHEDULE_CALLBACKS: Final = "reschedule_callbacks"
OPEN_TICKET: Final = "open_ticket"
DRAIN_QUEUE: Final = "drain_queue"
MARK_READ: Final = "mark_read"
# Cron jobs (jobs.CRON_JOBS): the worker schedules them; nothing enqueues them by name.
SWEEP_TICKETS: Final = "sweep_tickets"

JOB_NAMES: Final = frozenset(
    {
        PROCESS_INBOUND_MESSAGE,
        APPLY_STATUS_UPDATE,
        SEND_REPLY,
        LOG_AFTER_HOURS_CONTACT,
        REQUEST_CALLBACK,
        RUN_CALLBACK,
        RESCHEDULE_CALLBACKS,
        OPEN_TICKET,
        DRAIN_QUEUE,
        MARK_READ,
    }
)


def job_serializer(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def job_deserializer(raw: bytes) -> Any:
    return json.loads(raw)


def _arq_job(function: str, args: Sequence[Any], enqueue_ms: int) -> bytes:
    # The same dict arq's serialize_job builds: {'t': try, 'f': name, 'a': args, 'k': kwargs}.
    return job_serializer({"t": None, "f": function, "a": list(args), "k": {}, "et": enqueue_ms})


# One round trip per webhook: for each item, claim it (SET NX, raw JSON as the value) and, only
# when the claim is new, write the arq job and queue it. A pipeline cannot do this, since the
# enqueue depends on the claim's result; a script runs atomically, so a crash can never leave
# a claim without its job (a claimed but unqueued message would be lost for good, because every
# redelivery would then be seen as a duplicate).
_INTAKE_LUA: Final = lua.source("intake_submit")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    new: int
    duplicate: int
    unknown_number: int


@dataclass(slots=True)
class _Call:
    """One `submit` waiting for its EVALSHA: its keys then arguments (encoded), and its reply."""

    numkeys: int
    args: list[bytes | int]
    reply: asyncio.Future[list[int]]


class Intake:
    """Claims and enqueues webhook items: one EVALSHA of `_INTAKE_LUA` per webhook, or per
    `chunk_items` items of a larger one.

    Concurrent webhooks share round trips. redis-py spends about 330 µs of CPU per round trip,
    more than HTTP, HMAC and JSON together, so a `submit` that arrives while a round trip is in
    flight waits for it, then goes out with every other waiting `submit` as one pipeline (not a
    transaction). Each webhook is still its own atomic script call, each caller gets its own
    reply or error, and a round trip that fails fails every caller in it. An idle intake sends
    at once: coalescing adds no wait, it only fills the round trips that load makes necessary.

    A script blocks Redis while it runs (a 25,000-message batch took 243 ms in one call), so
    a webhook of more than `chunk_items` items (messages, statuses and other events together)
    is stored by several calls of at most that many; they go out together, like coalesced
    webhooks. The webhook is stored only when every call succeeded. When one fails, the others
    may have claimed their items; Meta's redelivery then finds those claimed (duplicates) and
    stores the rest, so a partial failure loses nothing and repeats nothing.
    """

    # Calls per pipeline: bounds one round trip's size when a burst of large batches arrives.
    MAX_CALLS_PER_ROUND_TRIP: Final = 256

    def __init__(self, redis: ArqRedis, *, job_expires_s: int, chunk_items: int = 500) -> None:
        if chunk_items < 1:
            raise ValueError("chunk_items must be at least 1")
        self._redis = redis
        self._job_ttl_ms = job_expires_s * 1000
        self._chunk_items = chunk_items
        self._sha: str | None = None
        self._waiting: list[_Call] = []
        # The task sending `_waiting`, while there is one; at most one round trip is in flight.
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[IntakeItem], other: Sequence[str] = ()) -> IntakeResult:
        """Claim every item, enqueue the new ones, keep `other` raw events. Idempotent per item.

        Returns only when every item is stored (all of the webhook's script calls replied).

        Raises:
            redis.exceptions.RedisError (or TimeoutError) when Redis cannot store it: the caller
            must not acknowledge the webhook then.
        """
        now_ms = int(time.time() * 1000)
        step, n_items = self._chunk_items, len(items)
        # Items first, then the other events, cut into calls of at most `step` entries. An
        # empty webhook still makes one (empty) call, so it is answered as Redis is: 503 when
        # Redis is down, like any other.
        prepared = [
            self._prepare(
                items[start : start + step],
                other[max(start - n_items, 0) : max(start + step - n_items, 0)],
                now_ms,
            )
            for start in range(0, max(n_items + len(other), 1), step)
        ]
        # Queued only once all are built: if one cannot be encoded, none was sent.
        calls = [self._queue(call) for call in prepared]
        if len(calls) == 1:
            results = [await calls[0]]
        else:
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            results = cast(list[list[int]], outcomes)
        return IntakeResult(
            new=sum(int(r[0]) for r in results),
            duplicate=sum(int(r[1]) for r in results),
            unknown_number=sum(int(r[2]) for r in results),
        )

    @staticmethod
    def _encode(key_list: list[str], argv: list[str | bytes | int]) -> _Call:
        # Encoded here, in the caller's own context: a value redis-py could not encode (a lone
        # surrogate) then fails this webhook alone instead of the pipeline it would have joined.
        args = [a.encode() if isinstance(a, str) else a for a in (*key_list, *argv)]
        return _Call(len(key_list), args, asyncio.get_running_loop().create_future())

    def _prepare(self, items: Sequence[IntakeItem], other: Sequence[str], now_ms: int) -> _Call:
        """The script call that stores `items` and `other`, encoded, not yet queued."""
        key_list = [keys.NUMBERS, default_queue_name, keys.INTAKE_STATS, keys.OTHER_EVENTS]
        argv: list[str | bytes | int] = [
            keys.CLAIM_TTL_S * 1000,
            self._job_ttl_ms,
            now_ms,
            len(items),
            len(other),
            keys.OTHER_EVENTS_MAX,
        ]
        for item in items:
            if item.kind == "message":
                claim_key, job_id = keys.inbound(item.claim_id), inbound_job_id(item.claim_id)
                job = self._job(PROCESS_INBOUND_MESSAGE, item.claim_id, now_ms)
            else:
                claim_key, job_id = keys.status_claim(item.claim_id), status_job_id(item.claim_id)
                job = self._job(APPLY_STATUS_UPDATE, item.claim_id, now_ms)
            key_list += [claim_key, job_key_prefix + job_id]
            argv += [item.phone_number_id, job_id, item.raw, job]
        key_list.append(keys.WORKER_IDLE)  # new jobs wake an idle worker (storage/keys.py)
        argv += list(other)
        return self._encode(key_list, argv)

    @staticmethod
    def _job(function: str, claim_id: str, enqueue_ms: int) -> bytes:
        """`_arq_job(function, [claim_id], enqueue_ms)`, byte for byte, from a template.

        Building and walking the dict costs a tenth of a 50-message webhook's CPU; the C string
        escaper alone costs almost nothing (`ensure_ascii`, as `job_serializer` does).
        """
        return b'{"t":null,"f":%s,"a":[%s],"k":{},"et":%d}' % (
            json.dumps(function).encode(),
            json.dumps(claim_id).encode(),
            enqueue_ms,
        )

    def _queue(self, call: _Call) -> asyncio.Future[list[int]]:
        """Send `call` with the next round trip; its future gets its reply or its error."""
        self._waiting.append(call)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        return call.reply

    async def _send_waiting(self) -> None:
        batch: list[_Call] = []
        try:
            while self._waiting:
                cut = self.MAX_CALLS_PER_ROUND_TRIP
                batch, self._waiting = self._waiting[:cut], self._waiting[cut:]
                await self._send(batch)
                batch = []
        except BaseException:
            # Only cancellation gets here (`_send` settles its own calls on any error): the
            # waiting webhooks must still be answered, with a 503 so that Meta redelivers.
            stopped = RedisConnectionError("webhook intake stopped")
            for call in (*batch, *self._waiting):
                _settle(call, stopped)
            self._waiting = []
            raise
        finally:
            self._sender = None

    async def _send(self, batch: list[_Call]) -> None:
        """One pipeline of EVALSHAs; settles every call in `batch`, with a reply or an error."""
        try:
            if self._sha is None:
                self._sha = await self._redis.script_load(_INTAKE_LUA)
            replies = await self._pipeline(batch)
            unloaded = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if unloaded:
                # Redis restarted (scripts are not persisted): load again and resend, once. A
                # NOSCRIPT call did not run, so resending it cannot claim anything twice.
                self._sha = await self._redis.script_load(_INTAKE_LUA)
                again = await self._pipeline([batch[i] for i in unloaded])
                for i, reply in zip(unloaded, again, strict=True):
                    replies[i] = reply
        except Exception as exc:  # every kind of failure must reach every waiting webhook
            for call in batch:
                _settle(call, exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            _settle(call, reply)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(self._sha or "", call.numkeys, *call.args)  # type: ignore[arg-type]
        # raise_on_error=False: one call's error (NOSCRIPT, a script error) is that call's alone.
        return list(await pipe.execute(raise_on_error=False))


def _settle(call: _Call, outcome: Any) -> None:
    if call.reply.done():  # the webhook's handler was cancelled: nobody waits for this one
        return
    if isinstance(outcome, BaseException):
        call.reply.set_exception(outcome)
    else:
        call.reply.set_result(list(outcome))


def inbound_job_id(wamid: str) -> str:
    return f"inbound:{wamid}"


def status_job_id(claim_id: str) -> str:
    return f"status:{claim_id}"


# arq's enqueue_job costs three round trips (WATCH, EXISTS, MULTI/EXEC). The same effect in
# one script: skip when the job (or its result) exists, else write it and queue it, atomically.
_ENQUEUE_LUA: Final = lua.source("queue_enqueue_job")


async def _enqueue(
    redis: ArqRedis,
    function: str,
    *args: Any,
    job_id: str,
    defer_until: datetime | None = None,
    expires_s: int | None = None,
) -> bool:
    """Enqueue one job with a deterministic id; False when that job is already queued.

    Writes exactly what `ArqRedis.enqueue_job` writes (JSON job under `arq:job:<id>`, score in
    `arq:queue`, expiry = `expires_s`, else the delay plus the client's `expires_extra_ms`).
    """
    if function not in JOB_NAMES:
        raise ValueError(f"unknown job {function!r}")
    now_ms = int(time.time() * 1000)
    score = int(defer_until.timestamp() * 1000) if defer_until is not None else now_ms
    expires_ms = (
        expires_s * 1000
        if expires_s is not None
        else max(score - now_ms, 0) + int(redis.expires_extra_ms)
    )
    # EVAL, not EVALSHA: Redis caches the compiled script by its digest, and EVAL needs no
    # reload after a Redis restart.
    argv: list[Any] = [_arq_job(function, args, now_ms), expires_ms, score, job_id]
    queued = await redis.eval(  # type: ignore[misc]
        _ENQUEUE_LUA,
        4,
        job_key_prefix + job_id,
        result_key_prefix + job_id,
        default_queue_name,
        keys.WORKER_IDLE,  # a queued job wakes an idle worker (storage/keys.py)
        *argv,
    )
    return bool(queued)


def reply_job_id(natural_key: str) -> str:
    return f"reply:{natural_key}"


async def enqueue_reply(redis: ArqRedis, request: ReplyRequest) -> bool:
    """Queue one reply; its job id is its natural key, so a repeat is not queued twice.

    The reply also takes its place in its contact's send order now, as it is requested: two
    jobs of one contact may start together, and if each joined the order when it first ran,
    the later one could join (and be sent) first. Fractional milliseconds order the replies
    one producer queues within a millisecond (the absence text, then its contact card).
    Enqueued first: a place without a job would hold the contact's later replies back.
    """
    queued = await _enqueue(
        redis,
        SEND_REPLY,
        request.model_dump(mode="json"),
        job_id=reply_job_id(request.natural_key),
    )
    await SendsStore(redis).join_order(
        request.phone_number_id, request.contact, request.natural_key, time.time() * 1000
    )
    return queued


# Make a deferred job due now: only while it waits in the queue (a running job decides for
# itself) and only to bring it forward, never to push it back.
_HURRY_JOB_LUA: Final = lua.source("queue_hurry_job")


async def hurry_reply(redis: ArqRedis, natural_key: str) -> bool:
    """Run now a reply job that waits (deferred) for an earlier reply to the same contact.

    Called by the earlier reply as it leaves the order. True when a waiting job was moved.
    """
    job_id = reply_job_id(natural_key)
    moved = await cast(
        Awaitable[Any],
        redis.eval(
            _HURRY_JOB_LUA,
            3,
            default_queue_name,
            job_key_prefix + job_id,
            in_progress_key_prefix + job_id,
            job_id,
            str(int(time.time() * 1000)),
        ),
    )
    return bool(moved)


async def enqueue_log_after_hours(
    redis: ArqRedis, subject: Subject, action: LogAfterHoursContact
) -> bool:
    """Queue the after-hours row write for one message (job id `ah:<wamid>`)."""
    return await _enqueue(
        redis,
        LOG_AFTER_HOURS_CONTACT,
        subject.model_dump(mode="json"),
        action.model_dump(mode="json"),
        job_id=f"ah:{subject.wamid}",
    )


async def enqueue_callback_request(
    redis: ArqRedis, subject: Subject, action: RequestCallback
) -> bool:
    """Queue the "notify me" handling for one message (job id `cb:<wamid>`)."""
    return await _enqueue(
        redis,
        REQUEST_CALLBACK,
        subject.model_dump(mode="json"),
        action.model_dump(mode="json"),
        job_id=f"cb:{subject.wamid}",
    )


# A callback job may be re-deferred (the number was still closed when it ran) up to a year
# ahead; its arq job key must outlive that, or arq would drop it as expired.
_CALLBACK_JOB_EXPIRES_EXTRA_S: Final = 367 * 24 * 3600

# Move a queued job to a new time, keeping its payload: only while it waits (not while a worker
# runs it: the running job then re-checks the schedule itself), and extending its expiry.
_MOVE_JOB_LUA: Final = lua.source("queue_move_job")


def run_callback_job_id(phone_number_id: str, row_id: str) -> str:
    """The fixed id of a callback's job: a second request cannot add a second job."""
    return f"callback:{phone_number_id}:{row_id}"


def _wall_time(at: datetime, now: datetime) -> datetime:
    # Jobs run on arq's wall clock; `now` is the caller's clock (`deps.clock`). Scheduling by
    # the difference keeps the two consistent: equal in production, and tests that move a
    # FixedClock see the job due exactly when their clock reaches `at`.
    return datetime.now(UTC) + (at - now)


async def enqueue_run_callback(
    redis: ArqRedis, phone_number_id: str, row_id: str, at: datetime, *, now: datetime
) -> bool:
    """Schedule the callback of an after-hours row at `at` (the number's next opening).

    `now` is the caller's clock. Job id `callback:<number>:<row>`: False (nothing added) when
    that job is already queued; use `move_run_callback` to change its time.
    """
    wall = _wall_time(at, now)
    delay_s = max(0, int((wall - datetime.now(UTC)).total_seconds()))
    return await _enqueue(
        redis,
        RUN_CALLBACK,
        phone_number_id,
        row_id,
        job_id=run_callback_job_id(phone_number_id, row_id),
        defer_until=wall,
        expires_s=delay_s + _CALLBACK_JOB_EXPIRES_EXTRA_S,
    )


async def move_run_callback(
    redis: ArqRedis, phone_number_id: str, row_id: str, at: datetime, *, now: datetime
) -> Literal["moved", "running", "absent"]:
    """Move a queued callback job to `at` (atomically, keeping its job id).

    Returns "running" when a worker runs it right now (it re-checks the schedule itself, so
    retry the move after it finished) and "absent" when no such job is queued.
    """
    job_id = run_callback_job_id(phone_number_id, row_id)
    wall_ms = int(_wall_time(at, now).timestamp() * 1000)
    ttl_ms = max(0, wall_ms - int(time.time() * 1000)) + _CALLBACK_JOB_EXPIRES_EXTRA_S * 1000
    outcome = await cast(
        Awaitable[Any],
        redis.eval(
            _MOVE_JOB_LUA,
            3,
            default_queue_name,
            job_key_prefix + job_id,
            in_progress_key_prefix + job_id,
            job_id,
            str(wall_ms),
            str(ttl_ms),
        ),
    )
    text = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
    if text == "moved":
        return "moved"
    return "running" if text == "running" else "absent"


async def enqueue_reschedule_callbacks(redis: ArqRedis, phone_number_id: str, version: int) -> bool:
    """Queue moving the number's pending callbacks after its settings changed to `version`.

    Job id `reschedule:<number>:<version>`: one job per settings version.
    """
    return await _enqueue(
        redis,
        RESCHEDULE_CALLBACKS,
        phone_number_id,
        job_id=f"reschedule:{phone_number_id}:{version}",
    )


async def enqueue_open_ticket(redis: ArqRedis, request: TicketRequest) -> bool:
    """Queue opening (or continuing) the contact's ticket; job id `ticket:<natural_key>`.

    The job is idempotent on `request.natural_key` too, so a retried or re-enqueued request
    never opens a second ticket.
    """
    return await _enqueue(
        redis,
        OPEN_TICKET,
        request.model_dump(mode="json"),
        job_id=f"ticket:{request.natural_key}",
    )


async def enqueue_drain_queue(redis: ArqRedis, phone_number_id: str, reason: str) -> bool:
    """Queue routing the number's waiting tickets to agents with free slots.

    Each call gets its own job id: a drain already running may have read the agents before the
    change that prompted this one, so deduplicating on the number could leave a ticket waiting.
    Draining twice is harmless (every assignment is one atomic script).
    """
    return await _enqueue(
        redis,
        DRAIN_QUEUE,
        phone_number_id,
        reason,
        job_id=f"drain:{phone_number_id}:{uuid.uuid4().hex}",
    )


async def enqueue_replay(redis: ArqRedis, entry: dict[str, Any]) -> str:
    """Queue a dead-lettered job again under a fresh id; returns that id.

    Safe because every job is idempotent on its natural key: a replay of a job that did part of
    its work completes the rest and repeats nothing.
    """
    job_id = f"{entry['id']}:replay:{uuid.uuid4().hex[:8]}"
    # deskline's jobs take positional arguments only (JSON values). The expiry is explicit:
    # the CLI's client does not carry DESKLINE_JOB_EXPIRES_S, and arq's default (24 h) would
    # drop a replay queued while the workers are down for a day.
    await _enqueue(
        redis,
        str(entry["function"]),
        *entry.get("args", []),
        job_id=job_id,
        expires_s=keys.CLAIM_TTL_S,
    )
    return job_id


async def enqueue_mark_read(
    redis: ArqRedis, phone_number_id: str, wamid: str, *, typing_slot: int | None = None
) -> bool:
    """Queue marking the inbound message `wamid` read on WhatsApp (issue 19).

    Job id `read:<number>:<wamid>`: a ticket opened twice while the first job waits queues one.
    With `typing_slot` (the throttle period's number), the read status carries the typing
    indicator, job id `typing:<number>:<wamid>:<slot>`, one per period.
    """
    typing = typing_slot is not None
    job_id = (
        f"typing:{phone_number_id}:{wamid}:{typing_slot}"
        if typing
        else f"read:{phone_number_id}:{wamid}"
    )
    return await _enqueue(redis, MARK_READ, phone_number_id, wamid, typing, job_id=job_id)
