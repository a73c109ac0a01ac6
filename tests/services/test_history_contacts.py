"""bot.services.history and bot.services.contacts without HTTP: the history's filters (one
validation for the API and the console), the PDF transcript through the runtime's render
workers, who serves a contact, and the CSV import."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from bot.domain.tickets import TicketTagsInput
from bot.runtime.deps import Deps
from bot.runtime.transcript_pool import TranscriptAbandonedError, TranscriptPool
from bot.services import contacts, history, tickets
from bot.services.history import HistoryFilters
from tests.services.conftest import ADMIN, OTHER_PNID, PNID, agent, customer_writes, serve

CUSTOMER = "5511987654321"


@pytest.fixture(name="pool")
async def fixture_pool() -> AsyncIterator[TranscriptPool]:
    pool = TranscriptPool(workers=1, timeout_s=30)
    yield pool
    await pool.close()


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (HistoryFilters(from_="yesterday"), "from"),
        (HistoryFilters(to="2026-02-30"), "to"),
        (HistoryFilters(agent="no spaces"), "agent"),
        (HistoryFilters(status="pending"), "status"),
        (HistoryFilters(tag="#urgent!"), "tag"),
        (HistoryFilters(cursor="page-2"), "cursor"),
        (HistoryFilters(limit=0), "limit"),
    ],
)
async def test_a_bad_history_filter_is_named(
    deps: Deps, filters: HistoryFilters, field: str
) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    with pytest.raises(InvalidInputError) as refused:
        await history.search(deps, ana, PNID, filters)
    assert refused.value.field == field


async def test_the_history_finds_tickets_by_agent_status_and_tag(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    ana = await agent(deps, "ana")
    zed = await agent(deps, "zed", (OTHER_PNID,))
    first = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.H1")
    await tickets.set_tags(deps, ana, first, TicketTagsInput(tags=("Urgente",)))
    await customer_writes(deps, "5511900000002", "Olá", wamid="wamid.H2")
    page = await history.search(deps, ana, PNID, HistoryFilters())
    assert len(page.items) == 2
    tagged = await history.search(deps, ana, PNID, HistoryFilters(tag=" URGENTE "))
    assert [t.id for t in tagged.items] == [first.id]
    held = await history.search(deps, ana, PNID, HistoryFilters(agent="ana", status="open"))
    assert len(held.items) == 2
    assert (await history.search(deps, ana, PNID, HistoryFilters(status="closed"))).items == []
    # A window that ends before it starts finds nothing, without searching.
    empty = await history.search(deps, ana, PNID, HistoryFilters(to="2000-01-01"))
    assert empty.items == []
    with pytest.raises(ForbiddenError):
        await history.search(deps, zed, PNID, HistoryFilters())
    with pytest.raises(NotFoundError):
        await history.search(deps, ADMIN, "3000", HistoryFilters())


async def test_the_transcript_is_rendered_by_the_pool_from_the_conversation(
    deps: Deps, pool: TranscriptPool
) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "Meu pedido não chegou", wamid="wamid.P1")
    await tickets.reply(deps, ana, ticket, "Vou verificar, Carla.")
    pdf = await history.transcript_pdf(deps, pool, ticket)
    assert pdf.startswith(b"%PDF")
    assert len(pool.pids()) == 1  # rendered in a worker process, which stays for the next
    with pytest.raises(TranscriptAbandonedError):
        await history.transcript_pdf(deps, pool, ticket, abandoned=lambda: True)


async def test_served_by_names_the_agent_holding_an_open_ticket(deps: Deps) -> None:
    await serve(deps)
    await agent(deps, "ana", slots=1)
    await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.S1")
    await customer_writes(deps, "5511900000002", "Oi", wamid="wamid.S2")  # waits: ana is full
    known = [c for c in await deps.stores.contacts.recent(PNID) if c.wa_id]
    hits = {h.contact.wa_id: h for h in await contacts.hits(deps, known)}
    served = hits[CUSTOMER].served_by
    assert served is not None
    assert (served.agent_id, served.name) == ("ana", "Ana")
    assert hits["5511900000002"].served_by is None
    assert hits[CUSTOMER].window_open is True


async def test_a_csv_import_reports_rows_and_is_idempotent(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    ana = await agent(deps, "ana")
    data = b"name,phone\nCarla,+5511987654321\nBad,12\n"
    report = await contacts.import_contacts(deps, ana, PNID, data, country=None)
    assert (report.imported, report.error_count) == (1, 1)
    assert report.errors[0].row == 3
    again = await contacts.import_contacts(deps, ana, PNID, data, country=None)
    assert (again.imported, again.unchanged) == (0, 1)
    with pytest.raises(ForbiddenError):
        await contacts.import_contacts(deps, ana, OTHER_PNID, data, country=None)
