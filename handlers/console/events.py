"""`GET /console/numbers/{id}/events`: the desk's live events for console pages, as SSE.

Why a proxy: browsers' EventSource cannot send an `Authorization` header, and the API's
stream (`/api/v1/agents/{id}/events`) takes `?token=` instead; the console never hands the
API token to page JavaScript, so the page opens this endpoint, authenticated by the session
cookie (same-origin, HttpOnly), and the server reads the same per-agent Redis streams
(storage/events.py) the API streams, with the same permission rule (`bot.auth.can_read_agent`).

Whose events: an agent gets their own stream; a manager or an admin watching a number gets
the streams of every agent attached to it (the API lets them read each of those), so a
supervisor's page moves when any agent's tickets do. Only events of this number are sent,
with the API's event names and JSON data. The stream starts with events published from now
on (the page loads its lists first); on reconnect the page reloads its lists.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import structlog
from aiohttp import web

from bot import auth
from bot.keys import stores_key
from handlers.api.events import (
    KEEPALIVE_S,
    client_gone,
    frame,
    open_stream,
    streams_stop_key,
)
from handlers.console.context import user_of
from handlers.console.numbers import readable_number

log = structlog.get_logger(__name__)

# One round trip per agent stream per poll: a supervisor's page reads a few streams, so it
# polls a little less often than the API's single-stream handler.
POLL_S: Final = 1.0
# A number with more agents than this is watched through the first ones only (by id).
MAX_STREAMS: Final = 50


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream the number's desk events to a console page until it leaves or the server stops."""
    stored = await readable_number(request)
    number = stored.phone_number_id
    user = user_of(request)
    stores = request.app[stores_key]
    caller = user.caller
    if caller.is_admin or caller.role == "manager":
        candidates = await stores.agents.ids_on_number(number)
        if user.agent is not None:
            candidates.add(caller.id)
        records = await stores.agents.get_many(sorted(candidates)[:MAX_STREAMS])
        agent_ids = [a.id for a in records if auth.can_read_agent(caller, a.id, a.numbers)]
    else:
        agent_ids = [caller.id]
    cursors = {agent_id: await stores.events.latest_id(agent_id) for agent_id in agent_ids}

    response = await open_stream(request)
    stop = request.app[streams_stop_key]
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    log.debug("console_events_opened", number=number, streams=len(agent_ids))
    try:
        # The page knows the stream is up (and reloads what it shows on a reconnect).
        await response.write(b"event: ready\ndata: {}\n\n")
        while not stop.is_set():
            sent = False
            for agent_id in agent_ids:
                for event in await stores.events.read(agent_id, cursors[agent_id]):
                    cursors[agent_id] = event.id
                    if event.data.get("phone_number_id") not in (number, None):
                        continue
                    await response.write(frame(event))
                    sent = True
            if sent:
                idle_since = loop.time()
            elif client_gone(request):
                break
            elif loop.time() - idle_since >= KEEPALIVE_S:
                await response.write(b": keepalive\n\n")
                idle_since = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
        await response.write_eof()
    except ConnectionError:  # the page left while we wrote
        pass
    log.debug("console_events_closed", number=number)
    return response
