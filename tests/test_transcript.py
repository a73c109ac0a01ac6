"""PDF transcripts: rendered by bot.runtime.transcript, read back with pypdf (a PDF reader),
through the
renderer and through `GET /api/v1/tickets/{id}/transcript.pdf`."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from pypdf import PdfReader

from bot.domain.clock import FixedClock
from bot.domain.models import InboundMessage
from bot.domain.tickets import Ticket, TicketContact, TicketRequest
from bot.runtime.transcript import Line, NoteLine, Transcript, render_transcript
from storage.agents import AgentsStore
from storage.notes import NotesStore
from storage.tickets import TicketsStore
from storage.timeline import TimelineStore
from tests.api.conftest import ADMIN, N1, put_agent, put_number

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 10:00 in São Paulo
CUSTOMER = "Olá! Minha encomenda não chegou, está atrasada 😡 ação já"
AGENT = "Bom dia, João! Vou verificar a situação 👍 Veja https://loja.example/pedido/42"


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def links_of(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    out = []
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A")
            if action is not None and "/URI" in action:
                out.append(str(action["/URI"]))
    return out


def transcript(lines: list[Line], language: str = "pt-BR") -> Transcript:
    ticket = Ticket(
        id="T0000000007abcdef",
        phone_number_id=N1,
        status="closed",
        agent_id="ana",
        contact=TicketContact(wa_id="5511987654321", name="João Ávila", phone="+5511987654321"),
        created_at=T0,
        assigned_at=T0,
        first_response_at=T0 + timedelta(minutes=1),
        closed_at=T0 + timedelta(minutes=30),
    )
    return Transcript(
        ticket=ticket,
        number_id=N1,
        number_name="Loja Centro",
        zone=ZoneInfo("America/Sao_Paulo"),
        language=language,  # type: ignore[arg-type]
        agent_name="Ana Conceição",
        lines=lines,
        generated_at=T0 + timedelta(hours=1),
    )


def test_the_pdf_holds_the_conversation_with_accents_and_emoji() -> None:
    pdf = render_transcript(
        transcript(
            [
                Line(T0, "João Ávila", True, CUSTOMER),
                Line(T0 + timedelta(minutes=1), "Ana Conceição", False, AGENT),
                Line(T0 + timedelta(minutes=2), "João Ávila", True, "foto da caixa", "image"),
                Line(T0 + timedelta(minutes=3), "João Ávila", True, None, "sticker"),
            ]
        )
    )
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    for expected in (
        "Histórico da conversa",
        "Loja Centro (106540352242922)",
        "João Ávila · +5511987654321",
        "Atendente: Ana Conceição",
        # Times in the number's zone.
        "02/03/2026 10:00:00 (-03:00) — João Ávila",
        "02/03/2026 10:01:00 (-03:00) — Ana Conceição",
        CUSTOMER,
        AGENT,
        "[mídia: image] foto da caixa",
        "[mídia: sticker]",
        "Encerrado em: 02/03/2026 10:30:00 (-03:00)",
    ):
        assert expected in text, expected
    assert links_of(pdf) == ["https://loja.example/pedido/42"]


def test_labels_follow_the_numbers_language_and_long_conversations_break_pages() -> None:
    lines = [
        Line(T0 + timedelta(minutes=i), "Ana", False, f"mensagem número {i} " * 8)
        for i in range(120)
    ]
    pdf = render_transcript(transcript(lines, language="en"))
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 2
    text = text_of(pdf)
    assert "Conversation transcript" in text
    assert "mensagem número 119" in text
    assert f"Page {len(reader.pages)}/{len(reader.pages)}" in text


def test_an_empty_ticket_still_renders() -> None:
    assert "(nenhuma mensagem)" in text_of(render_transcript(transcript([])))


async def _ticket_with_a_reply(
    client: TestClient[Any, Any], redis: aioredis.Redis, clock: FixedClock
) -> str:
    """A ticket of N1: the customer's CUSTOMER at T0, ana's AGENT a minute later; its id."""
    clock.at = T0 + timedelta(hours=1)
    await put_number(client, N1)
    await put_agent(client, "ana", role="agent", numbers=[N1])
    await AgentsStore(redis).set_status("ana", "online", at=T0)
    contact = "5511987654321"
    message = InboundMessage(
        phone_number_id=N1,
        wamid="wamid.A1",
        wa_id=contact,
        profile_name="João Ávila",
        timestamp=T0,
        type="text",
        text=CUSTOMER,
    )
    assert await TimelineStore(redis).add_inbound(message, key=contact)
    tickets = TicketsStore(redis)
    opened = await tickets.open_or_attach(
        TicketRequest(
            phone_number_id=N1,
            contact=contact,
            wa_id=contact,
            name="João Ávila",
            natural_key="wamid.A1",
            wamid="wamid.A1",
            at=T0,
        ),
        now=T0,
    )
    await tickets.record_reply(
        opened.ticket_id, "ana", "agent:1", AGENT, now=T0 + timedelta(minutes=1)
    )
    return opened.ticket_id


async def test_the_endpoint_renders_timeline_text_and_agent_replies(
    client: TestClient[Any, Any], redis: aioredis.Redis, clock: FixedClock
) -> None:
    ticket_id = await _ticket_with_a_reply(client, redis, clock)
    resp = await client.get(f"/api/v1/tickets/{ticket_id}/transcript.pdf", headers=ADMIN)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == (f'attachment; filename="ticket-{ticket_id}.pdf"')
    text = text_of(await resp.read())
    assert CUSTOMER in text
    assert AGENT in text
    assert "02/03/2026 10:00:00 (-03:00) — João Ávila" in text
    assert "02/03/2026 10:01:00 (-03:00) — Ana" in text


NOTES_PT = "Notas internas — não enviadas ao cliente"


async def test_the_ticket_s_notes_follow_the_conversation_in_a_marked_section(
    client: TestClient[Any, Any], redis: aioredis.Redis, clock: FixedClock
) -> None:
    ticket_id = await _ticket_with_a_reply(client, redis, clock)
    url = f"/api/v1/tickets/{ticket_id}/transcript.pdf"
    # No notes yet: no section at all (not an empty one).
    resp = await client.get(url, headers=ADMIN)
    assert resp.status == 200
    assert "Notas internas" not in text_of(await resp.read())

    notes = NotesStore(redis)
    await notes.add_to_ticket(
        ticket_id, "N1", "ana", "cliente pediu reembolso", now=T0 + timedelta(minutes=5)
    )
    # An author who is no agent (the admin, or an agent since deleted) shows by id.
    await notes.add_to_ticket(
        ticket_id, "N2", "ops-7", "reembolso aprovado ✅", now=T0 + timedelta(minutes=6)
    )
    resp = await client.get(url, headers=ADMIN)
    assert resp.status == 200
    text = text_of(await resp.read())
    # Notes come after the last message, author by name (else id), time in the number's zone.
    order = [
        text.index(AGENT),
        text.index(NOTES_PT),
        text.index("02/03/2026 10:05:00 (-03:00) — Ana"),
        text.index("cliente pediu reembolso"),
        text.index("02/03/2026 10:06:00 (-03:00) — ops-7"),
        text.index("reembolso aprovado ✅"),
    ]
    assert order == sorted(order), text
    assert text.count(NOTES_PT) == 1


def test_the_notes_section_is_titled_in_the_number_s_language() -> None:
    note = NoteLine(T0 + timedelta(minutes=5), "Ana", "nota")
    titles = {
        "pt-BR": NOTES_PT,
        "en": "Internal notes — not sent to the customer",
        "es": "Notas internas — no enviadas al cliente",
    }
    for language, title in titles.items():
        base = transcript([Line(T0, "João Ávila", True, CUSTOMER)], language=language)
        with_notes = replace(base, notes=[note])
        assert title in text_of(render_transcript(with_notes)), language
        assert title not in text_of(render_transcript(base)), language
