"""PDF transcripts of tickets (`GET /api/v1/tickets/{id}/transcript.pdf`), rendered with fpdf2.

Pure: `render_transcript` takes what the handler read and returns the PDF's bytes. It is
CPU-bound (2-4 s for 400 messages of 4 KB), so the web process runs it in a render worker
process (bot/runtime/transcript_pool.py), never on its event loop or in a thread.

Text is set in Noto Sans, with Noto Emoji as fpdf2's fallback font for the characters Noto Sans
lacks, so Portuguese accents and emoji render; both fonts ship in `bot/fonts/` (OFL, see its
README), so no system font is needed. Times are shown in the number's time zone. WhatsApp
media carry no public URL: a media message shows as a placeholder with its caption, and any
URL in a message's text becomes a link. A ticket longer than the handler's limit is shown from
its latest messages, after a note of how many earlier ones are left out. The ticket's internal
notes (issue 19) follow the conversation in their own section, titled as never sent to the
customer, so a reader of the PDF cannot take them for messages; no notes, no section.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from bot.domain.config import Language
from bot.domain.tickets import Ticket

if TYPE_CHECKING:  # fpdf2 is loaded on demand, by `render_transcript` only
    from bot.runtime.transcript_document import TranscriptDocument

FONT_DIR: Final = Path(__file__).parent / "fonts"
TEXT_FONT: Final = FONT_DIR / "NotoSans-Regular.ttf"
EMOJI_FONT: Final = FONT_DIR / "NotoEmoji-Regular.ttf"
_URL_RE: Final = re.compile(r"https?://[^\s<>\"']+")
# C0/C1 controls other than newline and tab would only print as boxes.
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_LABELS: Final[dict[str, dict[str, str]]] = {
    "pt-BR": {
        "title": "Histórico da conversa",
        "ticket": "Ticket",
        "number": "Número",
        "contact": "Contato",
        "opened": "Aberto em",
        "closed": "Encerrado em",
        "status": "Situação",
        "agent": "Atendente",
        "customer": "Cliente",
        "automatic": "Mensagem automática",
        "context": "Antes do ticket",
        "no_messages": "(nenhuma mensagem)",
        "media": "mídia",
        "link": "Link",
        "page": "Página",
        "omitted": (
            "{omitted} mensagens anteriores não mostradas: "
            "esta transcrição mostra as últimas {shown}."
        ),
        "notes": "Notas internas — não enviadas ao cliente",
    },
    "en": {
        "title": "Conversation transcript",
        "ticket": "Ticket",
        "number": "Number",
        "contact": "Contact",
        "opened": "Opened",
        "closed": "Closed",
        "status": "Status",
        "agent": "Agent",
        "customer": "Customer",
        "automatic": "Automatic message",
        "context": "Before the ticket",
        "no_messages": "(no messages)",
        "media": "media",
        "link": "Link",
        "page": "Page",
        "omitted": (
            "{omitted} earlier messages not shown: this transcript shows the last {shown}."
        ),
        "notes": "Internal notes — not sent to the customer",
    },
    "es": {
        "title": "Historial de la conversación",
        "ticket": "Ticket",
        "number": "Número",
        "contact": "Contacto",
        "opened": "Abierto",
        "closed": "Cerrado",
        "status": "Estado",
        "agent": "Agente",
        "customer": "Cliente",
        "automatic": "Mensaje automático",
        "context": "Antes del ticket",
        "no_messages": "(sin mensajes)",
        "media": "multimedia",
        "link": "Enlace",
        "page": "Página",
        "omitted": (
            "{omitted} mensajes anteriores no mostrados: "
            "esta transcripción muestra los últimos {shown}."
        ),
        "notes": "Notas internas — no enviadas al cliente",
    },
}
# Message types that are text already; anything else is media or an interaction.
_TEXT_TYPES: Final = frozenset({"text", "button", "interactive", None})


@dataclass(frozen=True, slots=True)
class Line:
    """One message of the transcript: who wrote it, when, and what."""

    at: datetime
    author: str
    inbound: bool
    text: str | None
    type: str | None = None
    # Sent by the chatbot (after-hours reply, absence text, welcome...), not by a person.
    automatic: bool = False
    # From before the ticket opened (the exchange that led to it).
    context: bool = False


@dataclass(frozen=True, slots=True)
class NoteLine:
    """One internal note of the ticket: its author's name (or id), when, and what."""

    at: datetime
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """Everything a transcript shows (the handler reads it; this module only renders)."""

    ticket: Ticket
    number_id: str
    number_name: str | None
    zone: ZoneInfo
    language: Language
    agent_name: str | None
    lines: Sequence[Line]
    generated_at: datetime
    # Earlier messages of the ticket left out of `lines` (the handler keeps the latest ones).
    omitted: int = 0
    # The ticket's internal notes, oldest first: shown after the conversation, marked apart.
    notes: Sequence[NoteLine] = ()


def _clean(text: str) -> str:
    return _CONTROL_RE.sub("", text.replace("\t", "    "))


def _when(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    return local.strftime("%d/%m/%Y %H:%M:%S") + f" ({offset[:3]}:{offset[3:]})"


def _body(line: Line, labels: dict[str, str]) -> str:
    text = _clean(line.text or "")
    if line.type not in _TEXT_TYPES:
        placeholder = f"[{labels['media']}: {line.type}]"
        return f"{placeholder} {text}".strip()
    return text


def render_transcript(transcript: Transcript) -> bytes:
    """The ticket's conversation as a PDF: a header (number, contact, times, status, agent),
    the note of `omitted` earlier messages if any, then every line with its author and local
    time (automatic messages and those from before the ticket labelled so), then the `notes`
    if any under their own title (never sent to the customer), each with its author and local
    time; over as many pages as it takes. Deterministic for the same input."""
    from bot.runtime.transcript_document import (
        TranscriptDocument,  # fpdf2: ~20 MB, loaded on demand
    )

    t = transcript
    labels = _LABELS.get(t.language, _LABELS["en"])
    ticket = t.ticket
    pdf = TranscriptDocument(TEXT_FONT, EMOJI_FONT)
    pdf.footer_text = f"{labels['ticket']} {ticket.id}"
    pdf.page_label = labels["page"]
    pdf.set_creation_date(t.generated_at)
    pdf.set_title(f"{labels['title']} · {ticket.id}")
    pdf.set_creator("deskline")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    pdf.set_font("NotoSans", size=16)
    pdf.multi_cell(0, 9, labels["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    contact = ticket.contact
    who = " · ".join(v for v in (contact.name, contact.phone or contact.wa_id) if v)
    header = [
        (labels["ticket"], ticket.id),
        (labels["number"], f"{t.number_name} ({t.number_id})" if t.number_name else t.number_id),
        (labels["contact"], who or "-"),
        (labels["opened"], _when(ticket.created_at, t.zone)),
        (labels["closed"], _when(ticket.closed_at, t.zone) if ticket.closed_at else "-"),
        (labels["status"], ticket.status),
        (labels["agent"], t.agent_name or ticket.agent_id or "-"),
    ]
    pdf.set_font("NotoSans", size=10)
    for label, value in header:
        pdf.set_text_color(90, 90, 90)
        pdf.cell(32, 6, f"{label}:")
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 6, _clean(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_draw_color(180, 180, 180)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(3)

    if t.omitted:
        pdf.set_font("NotoSans", size=10)
        pdf.set_text_color(150, 60, 0)
        note = labels["omitted"].format(omitted=t.omitted, shown=len(t.lines))
        pdf.paragraph(5.5, note)
        pdf.ln(3)
    if not t.lines:
        pdf.multi_cell(0, 6, labels["no_messages"], new_x="LMARGIN", new_y="NEXT")
    # `paragraph`, not `multi_cell`: fpdf2's line breaker is quadratic in the line's length
    # (bot/runtime/transcript_document.py), 40-50 s of CPU for 400 messages of 4 KB.
    for line in t.lines:
        pdf.set_font("NotoSans", size=9)
        if line.inbound:
            pdf.set_text_color(0, 90, 160)
        else:
            pdf.set_text_color(0, 120, 60)
        marks = [labels["automatic"]] if line.automatic else []
        marks += [labels["context"]] if line.context else []
        pdf.paragraph(5, " · ".join([f"{_when(line.at, t.zone)} — {_clean(line.author)}", *marks]))
        pdf.set_font("NotoSans", size=10)
        pdf.set_text_color(0, 0, 0)
        body = _body(line, labels)
        if body:
            pdf.paragraph(5.5, body)
        for url in _URL_RE.findall(line.text or ""):
            pdf.set_text_color(0, 0, 200)
            pdf.paragraph(5.5, f"{labels['link']}: {url}", link=url)
            pdf.set_text_color(0, 0, 0)
        pdf.ln(2.5)
    if t.notes:
        _notes(pdf, t.notes, labels["notes"], t.zone)
    return pdf.pdf_bytes()


def _notes(pdf: TranscriptDocument, notes: Sequence[NoteLine], title: str, zone: ZoneInfo) -> None:
    """The notes section: a rule and a title in the notes' own colour, so it reads as the
    desk's remarks and not as part of the conversation, then each note as a message is."""
    pdf.ln(2)
    pdf.set_draw_color(180, 120, 0)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(3)
    pdf.set_font("NotoSans", size=13)
    pdf.set_text_color(150, 90, 0)
    pdf.paragraph(7, title)
    pdf.ln(2)
    for note in notes:
        pdf.set_font("NotoSans", size=9)
        pdf.set_text_color(150, 90, 0)
        pdf.paragraph(5, f"{_when(note.at, zone)} — {_clean(note.author)}")
        pdf.set_font("NotoSans", size=10)
        pdf.set_text_color(0, 0, 0)
        pdf.paragraph(5.5, _clean(note.text))
        pdf.ln(2.5)
