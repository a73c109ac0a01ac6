"""The one event-stream loop (server-sent events) behind the API's and the console's streams.

`GET /api/v1/agents/{id}/events` (handlers/api/events.py) and `GET /console/numbers/{n}/events`
(handlers/console/events.py) both read the per-agent Redis streams of storage/events.py, so any
web process serves any desk, and both go through `serve`, which holds the rules in one place:

- **What an event may reach** (`may_see`): an event of a number goes to a caller attached to
  that number (admins are attached to all), and only while the agent whose stream it is is on
  it too; an event that names no number goes only to that agent and to admins, since nothing
  says whose customers it concerns. A stream for one number (the console's) carries only it.
- **Who is still there**: the caller is resolved again (API: the token; console: the session)
  every `settings.stream_recheck_s` and before every keepalive. A revoked token, a deleted
  agent, an ended session, or a caller who may no longer read what the stream follows ends
  the stream; a changed role or set of numbers changes the filter from then on.
- **How many**: at most `settings.max_streams_per_user` streams per user (an agent, or the
  bootstrap admin) at once, API and console together, across every web process: each stream
  holds a place in Redis that it keeps with a heartbeat, so a crashed process's places free
  themselves. 429 past the cap.

The loop polls the streams without blocking: a blocking XREAD would hold one of the pool's
connections per open desk (the pool the webhook needs), while a poll holds one for a round
trip. A follower (`Accept: text/event-stream`, as EventSource always sends) keeps the answer
open; otherwise the events available now are sent and the answer ends (a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from bot.appkeys import settings_key, stores_key
from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import AgentRecord
from bot.domain.errors import StorageUnavailableError
from bot.domain.events import Event

log = structlog.get_logger(__name__)

# How often a stream that follows one agent looks for new events. Each followed agent costs a
# round trip per poll, so a page following several polls a little less often (its Feed says).
POLL_S: Final = 0.5
# A comment sent after this long without a write keeps proxies from closing an idle
# connection, and makes a client that left visible.
KEEPALIVE_S: Final = 15.0
# Sent first: how long EventSource waits before reconnecting (ms).
RETRY_MS: Final = 3000
# A place in the per-user count outlives its last heartbeat by this many rechecks, plus a
# margin: a stream is not dropped for one slow round trip, and a dead process's places are
# free again within seconds.
_PLACE_RECHECKS: Final = 3
_PLACE_MARGIN_S: Final = 5.0

# Set when the application shuts down: open streams end, so that shutdown does not wait for
# desks to hang up. Created by `setup_streams`.
streams_stop_key: Final = web.AppKey("deskline.events_stop", asyncio.Event)

# The caller again, None once their token or session no longer authenticates them.
Recheck = Callable[[], Awaitable[Caller | None]]
# The agents whose streams a caller follows now, None when they may no longer follow this one.
Targets = Callable[[Caller], Awaitable[Sequence[AgentRecord] | None]]


def setup_streams(app: web.Application) -> None:
    """Give `app` the shutdown signal its open streams watch."""
    app[streams_stop_key] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)


async def _stop_streams(app: web.Application) -> None:
    app[streams_stop_key].set()


@dataclass(frozen=True, slots=True)
class Feed:
    """What one stream follows, and for whom.

    Attributes:
        caller: the caller as authenticated when the request started.
        recheck: resolves the caller again (token or session), None once it no longer does.
        targets: the agents the stream follows for a caller, None when the caller may no
            longer follow it (the stream then ends). Called at the start and on every recheck.
        number: when set, only events of this phone_number_id are sent.
        after: resume after this event id (already validated); None starts with the next event.
        follow: keep the answer open (SSE) rather than send what is there and end.
        ready: send `event: ready` first (the console page reloads its lists on it).
        poll_s: how often to look for new events.
    """

    caller: Caller
    recheck: Recheck
    targets: Targets
    number: str | None = None
    after: str | None = None
    follow: bool = True
    ready: bool = False
    poll_s: float = POLL_S


def may_see(caller: Caller, agent: AgentRecord, event: Event, number: str | None = None) -> bool:
    """Whether `caller` may receive `event`, read from `agent`'s stream.

    The caller must be allowed to read the agent (`bot.domain.auth.can_read_agent`). An event of a
    number then needs the caller attached to it and the agent still on it (and, for a stream
    of one `number`, to be of that number); an event without a number reaches only the agent
    and admins.
    """
    if not auth.can_read_agent(caller, agent.id, agent.numbers):
        return False
    pnid = event.data.get("phone_number_id")
    if not isinstance(pnid, str) or not pnid:
        return caller.is_admin or caller.id == agent.id
    if number is not None and pnid != number:
        return False
    return pnid in agent.numbers and caller.attached_to(pnid)


def frame(event: Event) -> bytes:
    """One SSE frame: the event's id, type and JSON data."""
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def _stream_response() -> web.StreamResponse:
    return web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            # nginx and similar proxies must not buffer a stream.
            "X-Accel-Buffering": "no",
        }
    )


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def place_ttl_s(recheck_s: float) -> float:
    """How long a stream's place in the per-user count lasts without a heartbeat."""
    return _PLACE_RECHECKS * recheck_s + _PLACE_MARGIN_S


def _too_many(cap: int, retry_after_s: float) -> web.HTTPTooManyRequests:
    # A JSON body for the API (its error middleware passes JSON answers through); the console's
    # middleware turns the reason into its HTML error page.
    message = f"too many open event streams for this user (at most {cap}): close one first"
    body = {"error": {"code": "too_many_streams", "message": message}}
    return web.HTTPTooManyRequests(
        reason=message,
        text=json.dumps(body),
        content_type="application/json",
        headers={"Retry-After": str(math.ceil(retry_after_s))},
    )


async def serve(request: web.Request, feed: Feed) -> web.StreamResponse:
    """Stream the events `feed` follows until the client leaves, the server shuts down, or the
    caller may no longer read them (see the module docstring for the rules).

    Raises (before anything is sent):
        web.HTTPForbidden: `feed.targets` refuses the caller from the start.
        web.HTTPTooManyRequests: the user already has `max_streams_per_user` streams open.
    Storage failures before the stream starts propagate (503); after, they end the stream,
    and the client reconnects with `Last-Event-ID`.
    """
    settings = request.app[settings_key]
    events = request.app[stores_key].events
    caller = feed.caller
    followed = await feed.targets(caller)
    if followed is None:
        raise web.HTTPForbidden(reason="not allowed for this caller")
    cursors = {
        agent.id: feed.after if feed.after is not None else await events.latest_id(agent.id)
        for agent in followed
    }
    recheck_s = settings.stream_recheck_s
    ttl_s = place_ttl_s(recheck_s)
    cap = settings.max_streams_per_user
    stream_id = uuid.uuid4().hex
    if not await events.claim_stream(caller.id, stream_id, cap=cap, ttl_s=ttl_s):
        log.info("events_stream_refused", max_streams=cap)
        raise _too_many(cap, recheck_s)

    stop = request.app[streams_stop_key]
    loop = asyncio.get_running_loop()
    next_check = loop.time() + recheck_s
    last_write = loop.time()
    ended = "shutdown"
    log.debug("events_stream_opened", agents=len(followed), follow=feed.follow)
    response = _stream_response()
    try:
        await response.prepare(request)
        # The client's reconnection delay first.
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        if feed.ready:
            # The page knows the stream is up (and reloads what it shows on a reconnect).
            await response.write(b"event: ready\ndata: {}\n\n")
        while not stop.is_set():
            keepalive_due = loop.time() - last_write >= KEEPALIVE_S
            if keepalive_due or loop.time() >= next_check:
                current = await feed.recheck()
                now_followed = None if current is None else await feed.targets(current)
                if current is None or now_followed is None:
                    ended = "revoked" if current is None else "forbidden"
                    log.info("events_stream_revoked", reason=ended)
                    break
                if not await events.keep_stream(caller.id, stream_id, ttl_s=ttl_s):
                    ended = "place_lost"
                    break
                caller, followed = current, now_followed
                # An agent who joined the followed set starts with the events from now on.
                cursors = {
                    agent.id: cursors.get(agent.id) or await events.latest_id(agent.id)
                    for agent in followed
                }
                next_check = loop.time() + recheck_s
            read_any = False
            for agent in followed:
                batch = await events.read(agent.id, cursors[agent.id])
                if not batch:
                    continue
                read_any = True
                cursors[agent.id] = batch[-1].id
                for event in batch:
                    if may_see(caller, agent, event, feed.number):
                        await response.write(frame(event))
                        last_write = loop.time()
            if read_any:
                continue  # a full page may have more behind it: read again at once
            if not feed.follow:
                ended = "snapshot"
                break
            if client_gone(request):
                ended = "client"
                break
            if keepalive_due:
                await response.write(b": keepalive\n\n")
                last_write = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), feed.poll_s)
        await response.write_eof()
    except ConnectionError:  # the client left while we wrote
        ended = "client"
    except (StorageUnavailableError, RedisError, TimeoutError) as exc:
        # The answer has started: no status can tell the client any more. Ending the stream
        # makes EventSource reconnect, with Last-Event-ID, once the storage is back.
        ended = "unavailable"
        log.warning("events_stream_failed", error=type(exc).__name__)
    finally:
        log.debug("events_stream_closed", reason=ended)
        # In a task of its own: also when the handler is being cancelled (a server with
        # handler_cancellation cancels it as the client goes away). Should Redis be
        # unreachable, the place frees itself when its heartbeat deadline passes.
        release = asyncio.create_task(_release(events.release_stream, caller.id, stream_id))
        _releasing.add(release)
        release.add_done_callback(_releasing.discard)
        await asyncio.shield(release)
    return response


# Releases under way (the loop keeps only weak references to tasks).
_releasing: set[asyncio.Task[None]] = set()


async def _release(
    release: Callable[[str, str], Awaitable[None]], user_id: str, stream_id: str
) -> None:
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        await release(user_id, stream_id)
