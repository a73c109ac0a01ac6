"""`GET /api/v1/agents/{agent_id}/events`: an agent's desk events as server-sent events.

The events live in a Redis stream per agent (storage/events.py), so any web process serves
any agent, and a desk that reconnects with `Last-Event-ID` gets what it missed. The handler
polls the stream without blocking: a blocking XREAD would hold one of the pool's connections
per open desk (the pool the webhook needs), while a poll holds one for a round trip.

A client that asks for `text/event-stream` (browsers' EventSource always does) gets a stream
that stays open; any other client gets the events available now, and the answer ends (a
snapshot, handy for scripts and for clients that cannot stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

import structlog
from aiohttp import web

from bot import auth
from bot.errors import InvalidInputError, NotFoundError
from bot.keys import stores_key
from handlers.api import path_id
from handlers.api.auth import accepts_query_token, caller_of, forbid_unless
from storage.events import Event, is_event_id

log = structlog.get_logger(__name__)

# How often an open stream looks for new events, and sends a comment to keep proxies from
# closing an idle connection (and to notice a client that left).
POLL_S: Final = 0.5
KEEPALIVE_S: Final = 15.0
# Sent first: how long EventSource waits before reconnecting (ms).
RETRY_MS: Final = 3000

# Set when the application shuts down: open streams end, so that shutdown does not wait for
# desks to hang up. Created by `setup_events` (handlers.api.setup_api).
streams_stop_key: Final = web.AppKey("deskline.events_stop", asyncio.Event)


def setup_events(app: web.Application) -> None:
    """Give `app` the shutdown signal its open streams watch."""
    app[streams_stop_key] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)


async def _stop_streams(app: web.Application) -> None:
    app[streams_stop_key].set()


def frame(event: Event) -> bytes:
    """One SSE frame: the event's id, type and JSON data (the API's and the console's)."""
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Start an event stream: its headers, then the client's reconnection delay."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            # nginx and similar proxies must not buffer a stream.
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n\n".encode())
    return response


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@accepts_query_token
async def agent_events(request: web.Request) -> web.StreamResponse:
    """Stream the agent's events (the agent, admins, managers of one of its numbers).

    `Last-Event-ID` (header, or `last_event_id` in the query) resumes after that event;
    without it the stream starts with the next event. 422 naming `Last-Event-ID` when it is
    not an event id. Ends when the client leaves or the server shuts down.
    """
    agent_id = path_id(request, "agent_id")
    stores = request.app[stores_key]
    agent = await stores.agents.get(agent_id)
    numbers = agent.numbers if agent is not None else ()
    forbid_unless(auth.can_read_agent(caller_of(request), agent_id, numbers), "not your agent")
    if agent is None:
        raise NotFoundError(f"agent {agent_id} not found")
    last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if last is not None and not is_event_id(last):
        raise InvalidInputError(
            "Last-Event-ID must be an event id such as 1700000000000-0", "Last-Event-ID"
        )
    if last is None:
        last = await stores.events.latest_id(agent_id)
    follow = "text/event-stream" in request.headers.get("Accept", "")

    response = await open_stream(request)
    log.debug("events_stream_opened", agent_id=agent_id, follow=follow)
    stop = request.app[streams_stop_key]
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    try:
        while not stop.is_set():
            events = await stores.events.read(agent_id, last)
            for event in events:
                await response.write(frame(event))
                last = event.id
            if events:
                idle_since = loop.time()
                continue
            if not follow or client_gone(request):
                break
            if loop.time() - idle_since >= KEEPALIVE_S:
                await response.write(b": keepalive\n\n")
                idle_since = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
        await response.write_eof()
    except ConnectionError:  # the client left while we wrote
        pass
    finally:
        # Also when aiohttp cancels the handler because the connection went away first.
        log.debug("events_stream_closed", agent_id=agent_id, shutdown=stop.is_set())
    return response
