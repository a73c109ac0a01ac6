"""The fpdf2 document of a ticket transcript (bot/transcript.py renders into it).

A module of its own so that fpdf2 (with fontTools, ~20 MB of memory) is imported on the first
transcript a process renders, not when the web process starts: the web process is measured
against a 120 MB budget (BENCHMARKS.md), and most never render a transcript.
"""

from __future__ import annotations

from fpdf import FPDF


class TranscriptDocument(FPDF):
    """An FPDF with the transcript's page footer."""

    footer_text = ""
    page_label = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("NotoSans", size=8)
        self.set_text_color(120, 120, 120)
        # {nb} is fpdf2's alias for the page count, filled in when the document closes.
        text = f"{self.footer_text} · {self.page_label} {self.page_no()}/{{nb}}"
        self.cell(0, 6, text, align="C")
