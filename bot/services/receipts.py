"""Read receipts and typing indicators (issue 19): when the agent holding a ticket opens it,
the customer's last message is marked read on WhatsApp (blue ticks), once per message; while
that agent types a reply, WhatsApp shows the customer "typing…".

Only the holder triggers either: a manager or an admin looking at a ticket, or a colleague
reading it before a transfer, has not read it *for the customer*; blue ticks would tell the
customer somebody is answering when nobody is. Both follow the number's
`tickets.read_receipts` setting. The Graph call runs in the `mark_read` job (an agent's page
never waits on Meta, and a transient failure is retried there).
"""

from __future__ import annotations

from bot.domain.auth import Caller
from bot.domain.receipts import TypingResult
from bot.domain.tickets import Ticket, TicketMessage
from bot.runtime import queue
from bot.runtime.deps import Deps
from bot.services import conversation
from storage import keys


def last_inbound(messages: list[TicketMessage]) -> str | None:
    """The wamid of the customer's latest message in a conversation, if any."""
    inbound = [m for m in messages if m.direction == "in"]
    return max(inbound, key=lambda m: m.at).id if inbound else None


async def _enabled(deps: Deps, caller: Caller, ticket: Ticket) -> bool:
    """Whether `caller` opening or typing on `ticket` is the customer's agent at work."""
    if ticket.status != "open" or ticket.agent_id is None or caller.id != ticket.agent_id:
        return False
    config = await deps.stores.numbers.config(ticket.phone_number_id)
    return config is not None and config.tickets.read_receipts


async def conversation_opened(
    deps: Deps, caller: Caller, ticket: Ticket, messages: list[TicketMessage]
) -> bool:
    """The holder opened the ticket's conversation: queue marking its last inbound message read.

    Idempotent on the wamid: once Meta accepted the read status (marker
    `keys.read_receipt`), opening again queues nothing; while the job waits, its job id
    `read:<number>:<wamid>` dedupes. Returns whether a job was queued. Never raises for the
    caller's role: anyone else opening the ticket is simply not a read.
    """
    if not await _enabled(deps, caller, ticket):
        return False
    wamid = last_inbound(messages)
    if wamid is None or await deps.stores.receipts.is_read(ticket.phone_number_id, wamid):
        return False
    return await queue.enqueue_mark_read(deps.redis, ticket.phone_number_id, wamid)


async def agent_typing(deps: Deps, caller: Caller, ticket: Ticket) -> TypingResult:
    """The holder is typing a reply: show WhatsApp's typing indicator (which also marks the last
    inbound message read), at most once per `keys.TYPING_THROTTLE_S` per ticket.

    "off" when the caller is not the holder, the setting is off, the 24-hour window is closed
    (no reply could follow) or the customer never wrote;
    "throttled" when one went out lately.
    """
    if not await _enabled(deps, caller, ticket):
        return "off"
    now = deps.clock.now()
    if not await deps.stores.contacts.window_open(ticket.phone_number_id, ticket.contact_key, now):
        return "off"
    if not await deps.stores.receipts.claim_typing(ticket.phone_number_id, ticket.id):
        return "throttled"
    # Read the conversation only past the throttle: the desk calls this on keystrokes.
    wamid = last_inbound(await conversation.conversation(deps.stores, ticket))
    if wamid is None:
        return "off"
    slot = int(now.timestamp()) // keys.TYPING_THROTTLE_S
    await queue.enqueue_mark_read(deps.redis, ticket.phone_number_id, wamid, typing_slot=slot)
    return "sent"
