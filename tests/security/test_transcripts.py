"""PDF transcripts cannot exhaust the web process (bot/runtime/transcript_pool.py).

A review found one transcript of a large ticket cost 40-50 s of CPU inside the web process
(`asyncio.to_thread`: the GIL held, webhooks waiting) and could not be stopped: 8 requests kept
the process at 100 % for minutes after their clients had left. Here: the renderer is linear
(seconds for 400 messages of 4 KB), renders run in worker processes, at most
`transcript_workers` at once, each killed past `transcript_timeout_s` or when its client
leaves; a ticket past `transcript_max_messages` shows its latest messages after a note.

The first two tests run a real `python -m bot web` (tests/faults/harness.py).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from pypdf import PdfReader

from bot.app import create_app
from bot.domain.clock import FixedClock
from bot.domain.models import InboundMessage
from bot.domain.tickets import Ticket, TicketContact, TicketRequest
from bot.runtime.transcript import Line, Transcript, render_transcript
from bot.runtime.transcript_pool import transcripts_key
from bot.settings import Settings
from storage.tickets import TicketsStore
from storage.timeline import TimelineStore
from tests.api.conftest import ADMIN, N1, put_number
from tests.faults.harness import OPEN, Cluster, customer, message, report

WEBHOOK_BUDGET_S = 0.25
_WORDS = [
    "pedido",
    "entrega",
    "ação",
    "não",
    "chegou",
    "atrasada",
    "obrigado",
    "São",
    "Paulo",
    "código",
    "rastreio",
    "👍",
    "caixa",
    "veio",
    "amassada",
    "troca",
    "reembolso",
    "😡",
    "nota",
    "fiscal",
    "endereço",
    "número",
    "apartamento",
]


def _text(i: int, size: int) -> str:
    """About `size` characters of a customer's words (accents, emoji), unique to message i."""
    rnd = random.Random(i)
    words = [f"m{i:04d}início"]
    length = len(words[0])
    while length < size - 12:
        word = rnd.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    words.append(f"m{i:04d}fim")
    return " ".join(words)


def _flat(text: str) -> str:
    """Text without whitespace: a PDF reader puts line breaks where the lines wrapped."""
    return "".join(text.split())


# The page footer ("Ticket T... · Página 3/12"), between the two halves of a message that
# runs over a page break.
_FOOTER = re.compile(r"^Ticket \S+ · \S+ \d+/\d+$", re.MULTILINE)


def _pages_text(pdf: bytes, pages: range | None = None) -> str:
    """The text of the PDF (or of `pages`), page footers left out."""
    reader = PdfReader(io.BytesIO(pdf))
    chosen = range(len(reader.pages)) if pages is None else pages
    return _FOOTER.sub("", "\n".join(reader.pages[i].extract_text() for i in chosen))


def _head_and_tail(pdf: bytes, n: int = 3) -> tuple[str, str]:
    count = len(PdfReader(io.BytesIO(pdf)).pages)
    return (
        _pages_text(pdf, range(min(n, count))),
        _pages_text(pdf, range(max(0, count - n), count)),
    )


async def _ticket(r: aioredis.Redis, pnid: str, contact: str, texts: list[str]) -> str:
    """A ticket of `texts`, one customer message each, written through the stores (as the
    ticket and timeline jobs write them), the last one a minute ago."""
    tickets, timeline = TicketsStore(r), TimelineStore(r)
    first = datetime.now(UTC) - timedelta(minutes=len(texts) + 1)
    ticket_id = ""
    for i, text in enumerate(texts):
        at = first + timedelta(minutes=i)
        wamid = f"wamid.{contact}.{i:04d}"
        inbound = InboundMessage(
            phone_number_id=pnid,
            wamid=wamid,
            wa_id=contact,
            profile_name="Cliente Grande",
            timestamp=at,
            type="text",
            text=text,
        )
        assert await timeline.add_inbound(inbound, key=contact)
        opened = await tickets.open_or_attach(
            TicketRequest(
                phone_number_id=pnid,
                contact=contact,
                wa_id=contact,
                name="Cliente Grande",
                natural_key=wamid,
                wamid=wamid,
                at=at,
            ),
            now=at,
        )
        ticket_id = opened.ticket_id
    return ticket_id


async def _get_transcript(
    http: aiohttp.ClientSession, base_url: str, ticket_id: str
) -> tuple[int, dict[str, str], bytes]:
    async with http.get(
        f"{base_url}/api/v1/tickets/{ticket_id}/transcript.pdf",
        headers=ADMIN,
        timeout=aiohttp.ClientTimeout(total=120),
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def _children(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _cpu_s(pid: int) -> float:
    """CPU seconds `pid` and its live children have used (exited children not counted)."""
    total = 0.0
    for p in (pid, *_children(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# --- a real web process ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_webhooks_stay_fast_while_eight_large_transcripts_render(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """400 messages of ~4 KB, 8 transcript requests at once: every webhook sent meanwhile is
    answered within 250 ms, at most 2 renders run at once, every PDF holds the first and the
    last message, and the requests that found no free worker got a 503 with Retry-After."""
    web = await cluster.start_web(transcript_workers=2)
    await cluster.setup_numbers()
    texts = [_text(i, 4000) for i in range(400)]
    ticket_id = await _ticket(direct, OPEN, "5511900000001", texts)

    started = time.monotonic()
    requests = [
        asyncio.create_task(_get_transcript(cluster.http, cluster.base_url, ticket_id))
        for _ in range(8)
    ]
    latencies: list[float] = []
    most_renders = 0
    try:
        while not all(r.done() for r in requests):
            n = len(latencies)
            status, took = await cluster.post_webhook(
                message(OPEN, customer(n), f"wamid.HOOK{n:04d}"), timeout_s=30
            )
            assert status == 200
            latencies.append(took)
            most_renders = max(most_renders, len(_children(web.pid)))
            if took > WEBHOOK_BUDGET_S:
                break  # failed already; the renders would go on for minutes
            await asyncio.sleep(0.1)
        assert max(latencies) <= WEBHOOK_BUDGET_S, sorted(latencies)[-5:]
        results = await asyncio.gather(*requests)
    finally:
        for request in requests:
            request.cancel()
    elapsed = time.monotonic() - started

    assert len(latencies) >= 10  # webhooks did arrive while the renders ran
    assert most_renders <= 2
    pdfs = [body for status, _, body in results if status == 200]
    refused = [(status, headers, body) for status, headers, body in results if status != 200]
    assert len(pdfs) >= 2
    for status, headers, body in refused:
        assert status == 503
        assert headers["Retry-After"].isdigit()
        assert b'"transcript_busy"' in body
    assert [e for e in web.events() if e.get("level") in ("error", "critical")] == []
    for pdf in pdfs:
        head, tail = _head_and_tail(pdf)
        assert _flat(texts[0]) in _flat(head)
        assert _flat(texts[-1]) in _flat(tail)
    renders = [e["elapsed_ms"] for e in web.events() if e.get("event") == "transcript_rendered"]
    report(
        "transcripts_under_load",
        render_ms=max(renders),
        webhooks=len(latencies),
        webhook_max_ms=round(max(latencies) * 1000),
        pdfs=len(pdfs),
        busy=len(refused),
        pdf_kb=round(len(pdfs[0]) / 1024),
        seconds=round(elapsed, 1),
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_client_that_leaves_stops_its_render_and_frees_the_slot(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """With one render slot: a client asks for a large transcript and goes away mid-render.
    The web process (with its children) goes idle within a second or two instead of
    rendering on, the render's worker is gone, and the next transcript gets the slot."""
    web = await cluster.start_web(transcript_workers=1)
    await cluster.setup_numbers()
    large = await _ticket(direct, OPEN, "5511900000002", [_text(i, 4000) for i in range(800)])
    small_texts = [_text(i, 300) for i in range(3)]
    small = await _ticket(direct, OPEN, "5511900000003", small_texts)

    async with aiohttp.ClientSession() as leaving:
        request = asyncio.create_task(_get_transcript(leaving, cluster.base_url, large))
        await asyncio.sleep(2)  # rendering by now: ~7 s of CPU for 800 messages of 4 KB
        assert not request.done()
        request.cancel()
    # The session closed its connection. The render checks its client every 0.25 s.
    await asyncio.sleep(1)
    before = _cpu_s(web.pid)
    await asyncio.sleep(2)
    cpu = _cpu_s(web.pid) - before
    assert cpu < 0.3, f"the web process used {cpu:.1f} s of CPU after its client left"
    assert _children(web.pid) == []
    stopped = [e for e in web.events() if e.get("event") == "transcript_render_stopped"]
    assert [e["reason"] for e in stopped] == ["client_left"]

    asked = time.monotonic()
    status, _, pdf = await _get_transcript(cluster.http, cluster.base_url, small)
    assert status == 200, pdf[:300]
    assert _flat(small_texts[-1]) in _flat(_pages_text(pdf))
    assert [e for e in web.events() if e.get("level") in ("error", "critical")] == []
    report(
        "transcript_abandoned",
        cpu_after_leaving_s=round(cpu, 2),
        next_transcript_s=round(time.monotonic() - asked, 1),
    )


# --- the app in this process (its render workers are real processes) -----------------------


@pytest.fixture(name="make_client")
def fixture_make_client(
    make_settings: Callable[..., Settings],
    clock: FixedClock,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def make(**overrides: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(make_settings(**overrides), clock=clock))

    return make


async def test_a_render_past_its_time_is_killed_and_answered_503(
    make_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    redis: aioredis.Redis,
    logs: list[dict[str, Any]],
) -> None:
    client = await make_client(transcript_timeout_s=0.5)
    await put_number(client, N1)
    ticket_id = await _ticket(redis, N1, "5511900000004", [_text(i, 4000) for i in range(200)])
    started = time.monotonic()
    resp = await client.get(f"/api/v1/tickets/{ticket_id}/transcript.pdf", headers=ADMIN)
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    error = (await resp.json())["error"]
    assert error["code"] == "transcript_timeout"
    assert time.monotonic() - started < 5
    # Its worker was killed, not left to finish.
    assert client.app[transcripts_key].pids() == []
    stopped = [e for e in logs if e["event"] == "transcript_render_stopped"]
    assert [e["reason"] for e in stopped] == ["timeout"]


async def test_a_ticket_past_the_limit_shows_its_latest_messages_after_a_note(
    make_client: Callable[..., Awaitable[TestClient[Any, Any]]], redis: aioredis.Redis
) -> None:
    client = await make_client(transcript_max_messages=3)
    await put_number(client, N1)  # pt-BR
    texts = [f"mensagem {word} do cliente" for word in ("um", "dois", "três", "quatro", "cinco")]
    ticket_id = await _ticket(redis, N1, "5511900000005", texts)
    resp = await client.get(f"/api/v1/tickets/{ticket_id}/transcript.pdf", headers=ADMIN)
    assert resp.status == 200
    text = _pages_text(await resp.read())
    assert "2 mensagens anteriores não mostradas" in text
    assert "mostra as últimas 3" in text
    for shown in texts[2:]:
        assert shown in text
    for hidden in texts[:2]:
        assert hidden not in text


# --- the renderer ---------------------------------------------------------------------------


def _transcript(lines: list[Line]) -> Transcript:
    at = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    ticket = Ticket(
        id="T0000000007abcdef",
        phone_number_id=N1,
        status="closed",
        agent_id=None,
        contact=TicketContact(wa_id="5511987654321", name="Cliente", phone="+5511987654321"),
        created_at=at,
        assigned_at=None,
        first_response_at=None,
        closed_at=at + timedelta(hours=7),
    )
    return Transcript(
        ticket=ticket,
        number_id=N1,
        number_name="Loja",
        zone=ZoneInfo("America/Sao_Paulo"),
        language="en",
        agent_name=None,
        lines=lines,
        generated_at=at + timedelta(hours=8),
    )


def test_a_large_ticket_renders_in_seconds_and_completely() -> None:
    """400 messages of ~4 KB: about 3 s of CPU here (fpdf2's multi_cell took 24 s)."""
    at = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    texts = [_text(i, 4000) for i in range(400)]
    lines = [Line(at + timedelta(minutes=i), "Cliente", True, t) for i, t in enumerate(texts)]
    started = time.process_time()
    pdf = render_transcript(_transcript(lines))
    cpu = time.process_time() - started
    assert cpu < 12, f"{cpu:.1f} s of CPU"
    head, tail = _head_and_tail(pdf)
    assert _flat(texts[0]) in _flat(head)
    assert _flat(texts[-1]) in _flat(tail)


def test_wrapping_keeps_every_character_and_page_aliases_stay_text() -> None:
    at = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    long_word = "https://loja.example/" + "x" * 400  # wider than a line: cut, all kept
    text = f"primeira linha\n\nlinha 👍depois do vazio {long_word} fim 😡😡 {{nb}} {{pages}}"
    pdf = render_transcript(_transcript([Line(at, "Cliente", True, text)]))
    out = _pages_text(pdf)
    assert _flat(text) in _flat(out)
    # The footer's page count is still filled in.
    assert "Page 1/1" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_rendering_logs_nothing_below_warning(caplog: pytest.LogCaptureFixture) -> None:
    """fontTools' subsetter logged ~25 INFO lines per PDF (glyph names included)."""
    at = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    with caplog.at_level(logging.DEBUG):
        render_transcript(_transcript([Line(at, "Cliente", True, "Olá 👍")]))
    noisy = [r for r in caplog.records if r.name.startswith(("fontTools", "fpdf"))]
    assert noisy == []
