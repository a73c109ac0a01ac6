"""`GET /console/numbers/{id}/events`: the desk's live events for console pages, as SSE.

Why a proxy: browsers' EventSource cannot send an `Authorization` header, and the API's
stream (`/api/v1/agents/{id}/events`) takes `?token=` instead; the console never hands the
API token to page JavaScript, so the page opens this endpoint, authenticated by the session
cookie (same-origin, HttpOnly). The loop is handlers/sse.py's, the API's own: the same
per-event permission filter, the session re-checked every `stream_recheck_s` (the stream ends
with it), and the same per-user cap on open streams.

Whose events: an agent gets their own stream; a manager or an admin watching a number gets
the streams of every agent attached to it whom they may read, so a supervisor's page moves
when any agent's tickets do. Only events of this number are sent (events that name no number
only to their own agent and to admins), with the API's event names and JSON data. The stream
starts with events published from now on (the page loads its lists first); on reconnect the
page reloads its lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiohttp import web

from bot.appkeys import stores_key
from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.config import AgentRecord
from handlers import sse
from handlers.console.context import user_of
from handlers.console.numbers import readable_number
from handlers.console.session import user_again

# One round trip per agent stream per poll: a supervisor's page reads a few streams, so it
# polls a little less often than the API's single-stream handler.
POLL_S: Final = 1.0
# A number with more agents than this is watched through the first ones only (by id).
MAX_STREAMS: Final = 50


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream the number's desk events to a console page until it leaves, the server stops,
    or the session ends (or its user loses the number); 429 past `max_streams_per_user`."""
    stored = await readable_number(request)
    number = stored.phone_number_id
    stores = request.app[stores_key]

    async def targets(caller: Caller) -> Sequence[AgentRecord] | None:
        if not auth.can_read_number(caller, number):
            return None
        if caller.is_admin or caller.role == "manager":
            candidates = await stores.agents.ids_on_number(number)
            if caller.id != auth.BOOTSTRAP_ADMIN_ID:
                candidates.add(caller.id)  # their own tickets, when they take some
            records = await stores.agents.get_many(sorted(candidates)[:MAX_STREAMS])
            return [a for a in records if auth.can_read_agent(caller, a.id, a.numbers)]
        own = await stores.agents.get(caller.id)
        return None if own is None else [own]

    async def recheck() -> Caller | None:
        user = await user_again(request)
        return None if user is None else user.caller

    feed = sse.Feed(
        caller=user_of(request).caller,
        recheck=recheck,
        targets=targets,
        number=number,
        ready=True,
        poll_s=POLL_S,
    )
    return await sse.serve(request, feed)
