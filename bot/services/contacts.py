"""Contact use cases: what the desk shows with each contact found (who serves them, whether
their window is open), and the CSV import into a number's contacts.

Permissions: a contact belongs to a number; everybody attached to the number sees its
contacts and may import into it (the desk's agents build their portfolios).
"""

from __future__ import annotations

from typing import Final

from bot.domain import auth
from bot.domain.auth import Caller
from bot.domain.contacts import ContactHit, ImportReport, ImportRowError, ServedBy, has_history
from bot.domain.contacts_import import parse_csv
from bot.domain.errors import ForbiddenError, NotFoundError
from bot.domain.models import Contact
from bot.runtime.deps import Deps
from storage import Stores

# Rows with errors listed in an import report (all are counted).
IMPORT_ERRORS_LISTED: Final = 200


async def served_by(stores: Stores, contacts: list[Contact]) -> dict[str, ServedBy]:
    """The agent serving each contact right now, by `f"{number}:{key}"`; absent when none (no
    active ticket, or a ticket still waiting in the queue). Two round trips for the tickets,
    one for the agents, whatever the number of contacts."""
    tickets = await stores.tickets.open_for_contacts([(c.phone_number_id, c.key) for c in contacts])
    held = {pair: t.agent_id for pair, t in tickets.items() if t.agent_id}
    agents = {a.id: a for a in await stores.agents.get_many(sorted(set(held.values())))}
    return {
        f"{pnid}:{key}": ServedBy(agent_id=agent_id, name=agents[agent_id].name)
        for (pnid, key), agent_id in held.items()
        if agent_id in agents
    }


async def hits(deps: Deps, contacts: list[Contact]) -> list[ContactHit]:
    """Each contact with what the desk needs to reach them: whether their 24-hour window is
    open now, whether they have history, and who serves them (`served_by`)."""
    now = deps.clock.now()
    serving = await served_by(deps.stores, contacts)
    return [
        ContactHit(
            number=c.phone_number_id,
            contact=c,
            has_history=has_history(c, now),
            window_open=c.window_open(now),
            served_by=serving.get(f"{c.phone_number_id}:{c.key}"),
        )
        for c in contacts
    ]


def require_attached(caller: Caller, phone_number_id: str) -> None:
    """Raise ForbiddenError unless `caller` is attached to the number."""
    if not auth.can_read_number(caller, phone_number_id):
        raise ForbiddenError("not attached to this number")


async def import_contacts(
    deps: Deps, caller: Caller, phone_number_id: str, data: bytes, *, country: str | None
) -> ImportReport:
    """Import a contacts CSV (format: bot.domain.contacts_import) into the number: valid rows
    stored, invalid ones reported by row and column (the first `IMPORT_ERRORS_LISTED`, all
    counted). Idempotent: the same file again reports every row unchanged. Imported contacts
    do not open the 24-hour window. `country` (a calling code, "55") makes numbers written
    without '+' national.

    Raises:
        ForbiddenError: see `require_attached`.
        NotFoundError: the number is not served.
        InvalidInputError: the file is unusable (field `file` or `phone`).
    """
    require_attached(caller, phone_number_id)
    stores = deps.stores
    if await stores.numbers.get(phone_number_id) is None:
        raise NotFoundError(f"number {phone_number_id} not found")
    parsed = parse_csv(data, country=country)
    counts = await stores.contacts.import_rows(phone_number_id, parsed.rows, deps.clock.now())
    return ImportReport(
        imported=counts.imported,
        updated=counts.updated,
        unchanged=counts.unchanged,
        errors=[
            ImportRowError(row=e.row, field=e.field, message=e.message)
            for e in parsed.errors[:IMPORT_ERRORS_LISTED]
        ],
        error_count=len(parsed.errors),
    )
