"""Console page of a number's tickets: the queue, the user's own, the others' (managers and
admins), one ticket with its conversation, and reply / close / transfer; the user's status.

Each list line shows the ticket's last message and the user's unread count
(`bot.services.inbox`); a ticket opens at its own address (`/console/numbers/{n}/tickets/{id}`,
so a reload or a shared link keeps it open), and opening it marks its messages seen. The
conversation refreshes alone on `message.in` (`/console/tickets/{id}/conversation`, so a reply
being typed is kept), delivery ticks follow `message.status` in the page script, internal
notes sit in the conversation by time, and an agent can ask the holder for a ticket
(`bot.services.transfer_requests`), who accepts or declines it there.

Lists refresh on every event of the desk's stream (handlers/console/events.py) and, since a
ticket that starts waiting announces itself to nobody, every few seconds as well. Each action
is the API's use case (`bot.services.tickets`: reply, close, transfer; `bot.services.agents`:
status): same input models, permission rules and jobs, so a 409 says what the API's says.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import ValidationError

from bot.appkeys import clock_key, deps_key, stores_key
from bot.domain import auth
from bot.domain.config import StatusInput, StoredNumber, invalid_input, is_valid_id
from bot.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from bot.domain.notes import NoteInput
from bot.domain.tickets import (
    Ticket,
    TicketReplyInput,
    TicketTransferInput,
    can_manage_ticket,
)
from bot.services import (
    agents,
    conversation,
    inbox,
    notes,
    receipts,
    tickets,
    transfer_requests,
)
from handlers.console.context import is_htmx, user_of
from handlers.console.numbers import readable_number
from handlers.console.render import render_fragment, render_page

LIST_LIMIT: Final = 100
CLOSED_SHOWN: Final = 10
_TICKET_ID_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


async def _lists(request: web.Request, number: str) -> dict[str, Any]:
    caller = user_of(request).caller
    store = request.app[stores_key].tickets
    waiting = await store.for_number(number, "waiting", LIST_LIMIT)
    waiting += await store.for_number(number, "transferred", LIST_LIMIT)
    waiting.sort(key=lambda t: t.queued_at or t.created_at)
    active = await store.for_number(number, "open", LIST_LIMIT)
    mine = [t for t in active if t.agent_id == caller.id]
    sees_all = caller.is_admin or caller.role == "manager"
    others = [t for t in active if t.agent_id != caller.id] if sees_all else []
    closed = await store.for_number(number, "closed", CLOSED_SHOWN)
    shown = [*mine, *waiting, *others]
    return {
        "queue": waiting,
        "mine": mine,
        "others": others,
        "closed": closed,
        "summaries": await inbox.summaries(request.app[deps_key], caller, shown),
        "names": await agent_names(request, number),
    }


async def agent_names(request: web.Request, number: str) -> dict[str, str]:
    """Agent id -> name for the number's agents (and the bootstrap admin): pages show names,
    an id only for someone no longer attached."""
    records = await request.app[stores_key].agents.on_number(number)
    return {auth.BOOTSTRAP_ADMIN_ID: "Administrator", **{a.id: a.name for a in records}}


async def _agent_record(request: web.Request) -> Any:
    user = user_of(request)
    if user.agent is None:
        return None
    return await request.app[stores_key].agents.get(user.caller.id)


def ticket_url(ticket: Ticket) -> str:
    """The ticket's own address in the console (its number's page with it open)."""
    return f"/console/numbers/{ticket.phone_number_id}/tickets/{ticket.id}"


async def page(request: web.Request) -> web.Response:
    """The number's tickets, the user's status, and one ticket open when the path names it
    (`.../tickets/{ticket_id}`; the old `?ticket=` redirects there). 404 for a ticket the
    user may not read or of another number."""
    stored = await readable_number(request)
    legacy = request.query.get("ticket")
    if legacy and "ticket_id" not in request.match_info:
        found = await readable_ticket(request, legacy)
        raise web.HTTPSeeOther(ticket_url(found))
    context: dict[str, Any] = {
        "number": stored,
        "zone": stored.config.zone,
        "section": "tickets",
        "me": await _agent_record(request),
        "detail": None,
        **await _lists(request, stored.phone_number_id),
    }
    ticket_id = request.match_info.get("ticket_id")
    if ticket_id:
        ticket = await readable_ticket(request, ticket_id)
        if ticket.phone_number_id != stored.phone_number_id:
            raise NotFoundError(f"There is no ticket {ticket_id[:64]}.")
        context["detail"] = await _detail_context(request, ticket, stored)
        # The list was read before the opening was marked: it shows the opened one as read.
        context["summaries"] = await inbox.summaries(
            request.app[deps_key],
            user_of(request).caller,
            [*context["mine"], *context["queue"], *context["others"]],
        )
    return await render_page(request, "tickets/page.html", context)


async def lists(request: web.Request) -> web.Response:
    """The lists alone, for the page to refresh (htmx)."""
    stored = await readable_number(request)
    context = {
        "number": stored,
        "zone": stored.config.zone,
        **await _lists(request, stored.phone_number_id),
    }
    return render_fragment(request, "tickets/_lists.html", context)


async def readable_ticket(request: web.Request, ticket_id: str) -> Ticket:
    """The ticket, if the user may read it: 404 when there is none and, with the same page,
    when it belongs to a number the user is not attached to (as the API's `visible_ticket`:
    whether another number's ticket exists is not theirs to learn)."""
    try:
        if _TICKET_ID_RE.fullmatch(ticket_id) is not None:
            caller = user_of(request).caller
            return await tickets.visible_ticket(request.app[stores_key], caller, ticket_id)
    except NotFoundError:
        pass
    raise NotFoundError(f"There is no ticket {ticket_id[:64]}.")


async def _detail_context(
    request: web.Request,
    ticket: Ticket,
    stored: StoredNumber,
    *,
    error: str | None = None,
    draft: str = "",
) -> dict[str, Any]:
    user = user_of(request)
    stores = request.app[stores_key]
    holder = ticket.agent_id if ticket.status == "open" else None
    agents = await stores.agents.on_number(ticket.phone_number_id)
    now = request.app[clock_key].now()
    window = await stores.contacts.window_open(ticket.phone_number_id, ticket.contact_key, now)
    pending = await stores.transfer_requests.get(ticket.id)
    if pending is not None:
        pending = pending.at(now)
    return {
        **await _conversation_context(request, ticket, stored),
        "ticket": ticket,
        "number": stored,
        "zone": stored.config.zone,
        "history": await stores.tickets.history(ticket.id),
        "can_reply": ticket.status == "open" and ticket.agent_id == user.caller.id,
        "can_manage": ticket.status != "closed"
        and can_manage_ticket(user.caller, ticket.phone_number_id, holder),
        "agents": [a for a in agents if a.id != ticket.agent_id],
        "can_request": ticket.status == "open"
        and ticket.agent_id not in (None, user.caller.id)
        and user.agent is not None
        and ticket.phone_number_id in user.agent.numbers,
        "transfer_request": pending,
        # The holder (or a manager) answers; the requester sees their request wait.
        "can_answer": pending is not None
        and pending.status == "pending"
        and ticket.status == "open"
        and can_manage_ticket(user.caller, ticket.phone_number_id, holder),
        "note_key": secrets.token_hex(12),
        "window_open": window,
        # Keystrokes in the reply box show the customer "typing…" (bot.services.receipts).
        "typing": ticket.status == "open"
        and ticket.agent_id == user.caller.id
        and window
        and stored.config.tickets.read_receipts,
        "quick_replies": await stores.quick_replies.categories(user.caller.id),
        # A reply form carries its own idempotency key: a double submit sends once.
        "reply_key": secrets.token_hex(12),
        "error": error,
        "draft": draft,
    }


async def _conversation_context(
    request: web.Request, ticket: Ticket, stored: StoredNumber
) -> dict[str, Any]:
    """The conversation with the ticket's notes merged in by time, agent names, and the
    opening marked seen for the user."""
    stores = request.app[stores_key]
    caller = user_of(request).caller
    # Counted before the conversation is read: see inbox.mark_seen.
    shown = len(await stores.tickets.messages(ticket.id))
    messages = await conversation.conversation(stores, ticket)
    found = await notes.ticket_notes(stores, ticket)
    entries: list[Any] = sorted([*messages, *found], key=lambda e: e.at)
    await inbox.mark_seen(request.app[deps_key], caller, ticket, shown)
    # The holder has the customer's messages on screen: blue ticks (once per message).
    await receipts.conversation_opened(request.app[deps_key], caller, ticket, messages)
    return {
        "ticket": ticket,
        "zone": stored.config.zone,
        "entries": entries,
        "names": await agent_names(request, ticket.phone_number_id),
    }


async def conversation_part(request: web.Request) -> web.Response:
    """The ticket's conversation alone (htmx), refreshed by the page on `message.in` so that
    a reply being typed stays; marks it seen for the user."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    stored = await number_of(request, ticket)
    if not is_htmx(request):
        raise web.HTTPSeeOther(ticket_url(ticket))
    context = await _conversation_context(request, ticket, stored)
    return render_fragment(request, "tickets/_conversation.html", context)


async def number_of(request: web.Request, ticket: Ticket) -> StoredNumber:
    stored = await request.app[stores_key].numbers.get(ticket.phone_number_id)
    if stored is None:
        raise NotFoundError(f"Number {ticket.phone_number_id} is not served any more.")
    return stored


async def detail(request: web.Request) -> web.Response:
    """One ticket: its conversation and history, and what the user may do with it."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    stored = await number_of(request, ticket)
    if not is_htmx(request):
        raise web.HTTPSeeOther(ticket_url(ticket))
    context = await _detail_context(request, ticket, stored)
    # Opening marked it seen: the lists (out of band) drop its unread count at once.
    context.update(await _lists(request, ticket.phone_number_id))
    context["oob"] = True
    return render_fragment(request, "tickets/_detail.html", context)


async def _after_action(
    request: web.Request,
    ticket_id: str,
    *,
    error: str | None = None,
    draft: str = "",
    status: int = 200,
) -> web.Response:
    ticket = await readable_ticket(request, ticket_id)
    stored = await number_of(request, ticket)
    if not is_htmx(request):
        if error is not None:
            raise ConflictError("refused", error)
        raise web.HTTPSeeOther(ticket_url(ticket))
    context = await _detail_context(request, ticket, stored, error=error, draft=draft)
    context.update(await _lists(request, ticket.phone_number_id))
    context["oob"] = True
    return render_fragment(request, "tickets/_detail.html", context, status=status)


async def reply(request: web.Request) -> web.Response:
    """The holding agent's reply, as `POST /api/v1/tickets/{id}/messages`: recorded, then
    queued to the outbox. 409 with the reason (window closed, served by someone else, still
    in the queue) shown above the reply box, the text kept."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    caller = user_of(request).caller
    form = await request.post()
    text = str(form.get("text", ""))
    key = str(form.get("key", ""))
    if tickets.REPLY_KEY.fullmatch(key) is None:
        key = secrets.token_hex(12)
    try:
        data = TicketReplyInput.model_validate({"text": text})
    except ValidationError as exc:
        message = invalid_input(exc).message
        return await _after_action(request, ticket.id, error=message, draft=text, status=422)
    try:
        await tickets.reply(request.app[deps_key], caller, ticket, data.text, key=key)
    except ConflictError as exc:
        error = _CONFLICTS.get(exc.code) or f"{exc.message[:1].upper()}{exc.message[1:]}."
        return await _after_action(request, ticket.id, error=error, draft=text, status=409)
    return await _after_action(request, ticket.id)


async def typing(request: web.Request) -> web.Response:
    """The holder types in the reply box (htmx, throttled in the page too): WhatsApp's typing
    indicator, as `POST /api/v1/tickets/{id}/typing`. 204 whatever happened: the server
    throttles and checks again, and a keystroke has nothing to show."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    await receipts.agent_typing(request.app[deps_key], user_of(request).caller, ticket)
    return web.Response(status=204)


# The console's wording where the API's message is written for developers.
_CONFLICTS: Final = {"not_assigned": "This ticket waits in the queue."}


async def close(request: web.Request) -> web.Response:
    """Close the ticket (its agent, a manager of its number, an admin), as the API does."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    caller = user_of(request).caller
    tickets.require_close(caller, ticket)  # 403 before the form is read
    form = await request.post()
    by: Literal["agent", "customer"] = (
        "customer" if form.get("closed_by") == "customer" else "agent"
    )
    await tickets.close(request.app[deps_key], caller, ticket, by)
    return await _after_action(request, ticket.id)


async def transfer(request: web.Request) -> web.Response:
    """Move the ticket to another agent of its number, or back to its queue (its agent, a
    manager, an admin), as `POST /api/v1/tickets/{id}/transfer` does."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    caller = user_of(request).caller
    tickets.require_transfer(caller, ticket)  # 403 before the form is read
    form = await request.post()
    target = str(form.get("to", ""))
    try:
        if target == "queue":
            to = TicketTransferInput(queue=ticket.phone_number_id)
        elif is_valid_id(target):
            to = TicketTransferInput(agent_id=target)
        else:  # what no agent id can be is an agent nobody knows
            raise InvalidInputError(f"agent {target[:64]} not found", "agent_id")
        await tickets.transfer(request.app[deps_key], caller, ticket, to)
    except (ConflictError, InvalidInputError) as exc:
        return await _after_action(request, ticket.id, error=exc.message, status=409)
    return await _after_action(request, ticket.id)


async def set_status(request: web.Request) -> web.Response:
    """The user's own status (online, break, invisible), as `PUT /api/v1/agents/{id}/status`;
    going online drains their numbers' queues. The bootstrap admin is no agent: 403."""
    user = user_of(request)
    if user.agent is None:
        raise web.HTTPForbidden(reason="The administrator token has no agent status.")
    form = await request.post()
    try:
        data = StatusInput.model_validate({"status": form.get("status")})
    except ValidationError as exc:
        raise invalid_input(exc) from None
    agent = await agents.visible_agent(request.app[stores_key], user.caller, user.caller.id)
    record = await agents.set_status(request.app[deps_key], user.caller, agent, data.status)
    back = str(form.get("back", ""))
    if not is_htmx(request):
        raise web.HTTPSeeOther(back if back.startswith("/console/") else "/console")
    return render_fragment(request, "tickets/_status.html", {"me": record})


async def add_note(request: web.Request) -> web.Response:
    """An internal note on the ticket (whoever may read it), as `POST
    /api/v1/tickets/{id}/notes`: stored for the desk, never sent to the customer. Idempotent
    on the form's key; 422 (shown above the conversation) for an empty or too long text."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    form = await request.post()
    text = str(form.get("text", ""))
    key = str(form.get("key", ""))
    try:
        data = NoteInput.model_validate({"text": text})
        await notes.add_ticket_note(
            request.app[deps_key],
            user_of(request).caller,
            ticket,
            data,
            key=key if tickets.REPLY_KEY.fullmatch(key) else None,
        )
    except ValidationError as exc:
        message = "Note not added: " + invalid_input(exc).message
        return await _after_action(request, ticket.id, error=message, status=422)
    except ConflictError as exc:
        return await _after_action(request, ticket.id, error=exc.message, status=409)
    return await _after_action(request, ticket.id)


async def request_transfer(request: web.Request) -> web.Response:
    """Ask the agent holding the ticket to hand it over (`transfer_requests.request`): the
    holder's page shows the request with Accept / Decline. 409 with the reason (nobody holds
    it, a request already waits); 403 for a user who is no agent of the number."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    try:
        await transfer_requests.request(request.app[deps_key], user_of(request).caller, ticket)
    except (ConflictError, ForbiddenError) as exc:
        return await _after_action(request, ticket.id, error=_sentence(exc.message), status=409)
    return await _after_action(request, ticket.id)


async def answer_transfer(request: web.Request) -> web.Response:
    """Accept or decline the ticket's pending transfer request (the holder, a manager, an
    admin), as `transfer_requests.answer`: accepting moves the ticket to the requester."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    form = await request.post()
    choice = form.get("answer")
    if choice not in ("accepted", "declined"):
        raise InvalidInputError("answer must be accepted or declined", "answer")
    try:
        await transfer_requests.answer(
            request.app[deps_key],
            user_of(request).caller,
            ticket,
            request.match_info["request_id"],
            "accepted" if choice == "accepted" else "declined",
        )
    except ConflictError as exc:
        return await _after_action(request, ticket.id, error=_sentence(exc.message), status=409)
    return await _after_action(request, ticket.id)


def _sentence(message: str) -> str:
    return f"{message[:1].upper()}{message[1:]}."
