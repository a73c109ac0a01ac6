"""A ticket's PDF transcript as an HTTP download: the API's and the console's one answer."""

from __future__ import annotations

import math

from aiohttp import web

from bot.appkeys import deps_key
from bot.domain.tickets import Ticket
from bot.runtime.transcript_pool import (
    TranscriptAbandonedError,
    TranscriptUnavailableError,
    transcripts_key,
)
from bot.services import history
from handlers.middlewares import error_body
from handlers.sse import client_gone


async def transcript_response(request: web.Request, ticket: Ticket) -> web.Response:
    """The ticket's transcript (`bot.services.history.transcript_pdf`) as a PDF attachment,
    for a ticket the caller may read.

    503 with `Retry-After` and the error's code (`transcript_busy`, `transcript_timeout`)
    when every render worker stays busy, the render runs out of time or its worker dies; the
    render is stopped as soon as the client disconnects (then 499, which nobody reads).
    """
    try:
        body = await history.transcript_pdf(
            request.app[deps_key],
            request.app[transcripts_key],
            ticket,
            abandoned=lambda: client_gone(request),
        )
    except TranscriptUnavailableError as exc:
        response = error_body(503, exc.code, exc.message)
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
        return response
    except TranscriptAbandonedError:
        # Nobody reads this answer: 499 is nginx's "client closed request", for the metrics.
        return web.Response(status=499)
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="ticket-{ticket.id}.pdf"'},
    )
