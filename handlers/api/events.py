"""`GET /api/v1/agents/{agent_id}/events`: an agent's desk events as server-sent events.

The events live in a Redis stream per agent (storage/events.py), and a desk that reconnects
with `Last-Event-ID` gets what it missed. The loop, the per-event permission filter, the
re-check of the token and the per-user cap on open streams are handlers/sse.py's, shared with
the console's stream.

A client that asks for `text/event-stream` (browsers' EventSource always does) gets a stream
that stays open; any other client gets the events available now, and the answer ends (a
snapshot, handy for scripts and for clients that cannot stream).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aiohttp import web

from bot.appkeys import stores_key
from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import AgentRecord
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.events import is_event_id
from handlers import sse
from handlers.api import path_id
from handlers.api.auth import caller_again, caller_of, forbid_unless
from handlers.api.queries import EventsQuery, read_query


def setup_events(app: web.Application) -> None:
    """Give `app` the shutdown signal open streams (the API's and the console's) watch."""
    sse.setup_streams(app)


async def agent_events(request: web.Request) -> web.StreamResponse:
    """Stream the agent's events (to the agent, admins, managers of one of its numbers).

    Each event reaches the caller only if it concerns a number both the caller (admins: any)
    and the agent are attached to; events that name no number reach only the agent and
    admins. `Last-Event-ID` (header, or `last_event_id` in the query) resumes after that
    event; without it the stream starts with the next event. 422 naming `Last-Event-ID` when
    it is not an event id; 429 past `max_streams_per_user` open streams. Ends when the client
    leaves, the server shuts down, or the token no longer authenticates a caller who may read
    the agent (checked every `stream_recheck_s`).
    """
    agent_id = path_id(request, "agent_id")
    stores = request.app[stores_key]
    agent = await stores.agents.get(agent_id)
    numbers = agent.numbers if agent is not None else ()
    caller = caller_of(request)
    forbid_unless(auth.can_read_agent(caller, agent_id, numbers), "not your agent")
    if agent is None:
        raise NotFoundError(f"agent {agent_id} not found")
    # The header wins, and the query is read only without it: an EventSource reconnects with
    # the header and the URL it started with, whose `last_event_id` may be stale or bad.
    last = request.headers.get("Last-Event-ID") or read_query(request, EventsQuery).last_event_id
    if last is not None and not is_event_id(last):
        raise InvalidInputError(
            "Last-Event-ID must be an event id such as 1700000000000-0", "Last-Event-ID"
        )

    async def targets(now: Caller) -> Sequence[AgentRecord] | None:
        current = await stores.agents.get(agent_id)
        if current is None or not auth.can_read_agent(now, agent_id, current.numbers):
            return None
        return [current]

    feed = sse.Feed(
        caller=caller,
        recheck=functools.partial(caller_again, request),
        targets=targets,
        after=last,
        follow="text/event-stream" in request.headers.get("Accept", ""),
    )
    return await sse.serve(request, feed)
