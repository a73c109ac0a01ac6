"""`/api/v1/tickets/{id}/transfer-requests`: ask to take over a served ticket; its holder (or a
manager of the number, or an admin) accepts or declines. The rules and their 403/404/409 are
`bot.services.transfer_requests`'."""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain.transfers import TransferAnswer
from bot.services import tickets, transfer_requests
from handlers.api import model_response, path_id
from handlers.api.auth import caller_of


async def request_transfer(request: web.Request) -> web.Response:
    """The caller asks to serve the ticket: 201 with the pending request."""
    caller = caller_of(request)
    ticket = await tickets.visible_ticket(
        request.app[stores_key], caller, path_id(request, "ticket_id")
    )
    made = await transfer_requests.request(request.app[deps_key], caller, ticket)
    return model_response(made, status=201)


async def _answer(request: web.Request, answer: TransferAnswer) -> web.Response:
    caller = caller_of(request)
    ticket = await tickets.visible_ticket(
        request.app[stores_key], caller, path_id(request, "ticket_id")
    )
    done = await transfer_requests.answer(
        request.app[deps_key], caller, ticket, path_id(request, "request_id"), answer
    )
    return model_response(done)


async def accept_transfer(request: web.Request) -> web.Response:
    """Accept: the ticket moves to the requester with its history."""
    return await _answer(request, "accepted")


async def decline_transfer(request: web.Request) -> web.Response:
    """Decline: the holder keeps the ticket."""
    return await _answer(request, "declined")
