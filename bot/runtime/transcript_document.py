"""The fpdf2 document of a ticket transcript (bot/runtime/transcript.py renders into it).

A module of its own so that fpdf2 (with fontTools, ~20 MB of memory) is imported on the first
transcript a process renders, not when the web process starts: the web process is measured
against a 120 MB budget (BENCHMARKS.md), and most never render a transcript.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import CoreFont, TTFFont

# fontTools' subsetter logs ~25 INFO lines per font per PDF ("glyf subsetted", the glyph
# names...): noise at our INFO level, and the glyph list hints at what a customer wrote.
for _name in ("fontTools", "fpdf"):
    logging.getLogger(_name).setLevel(logging.WARNING)


TEXT_FAMILY = "NotoSans"
EMOJI_FAMILY = "NotoEmoji"
# fpdf2's page-count alias. Set only while the footer is drawn and at output: fpdf2 replaces
# the alias in any text drawn while it is set, so "{nb}" in a customer's message would print
# as the page count. Seven characters reserve the width of a 7-digit count ("{nb}" keeps 3,
# and warns past 999 pages: 2000 messages of 4 KB make ~1,700).
PAGES_ALIAS = "{pages}"


class TranscriptDocument(FPDF):
    """An FPDF with the transcript's fonts, its page footer and a linear-time paragraph."""

    footer_text = ""
    page_label = ""

    def __init__(self, text_font: Path, emoji_font: Path) -> None:
        super().__init__(format="A4")
        self.str_alias_nb_pages = ""  # off: see PAGES_ALIAS
        self.add_font(TEXT_FAMILY, "", str(text_font))
        self.add_font(EMOJI_FAMILY, "", str(emoji_font))
        # For `multi_cell` and `cell` (the header, the footer); `paragraph` picks fonts itself.
        self.set_fallback_fonts([EMOJI_FAMILY])
        self._text_font = _ttf(self.fonts[TEXT_FAMILY.lower()])
        self._emoji_font = _ttf(self.fonts[EMOJI_FAMILY.lower()])
        # What each font draws: a character Noto Sans lacks is set in Noto Emoji when that
        # has it (fpdf2's fallback rule), else in Noto Sans all the same (a missing glyph).
        self._plain = frozenset(map(chr, self._text_font.cmap))
        self._emoji = frozenset(map(chr, self._emoji_font.cmap)) - self._plain
        # Font size in points -> character widths at that size.
        self._widths: dict[float, dict[str, float]] = {}

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(TEXT_FAMILY, size=8)
        self.set_text_color(120, 120, 120)
        text = f"{self.footer_text} · {self.page_label} {self.page_no()}/{PAGES_ALIAS}"
        before = self.str_alias_nb_pages
        self.alias_nb_pages(PAGES_ALIAS)  # filled in with the page count at output
        self.cell(0, 6, text, align="C")
        self.str_alias_nb_pages = before

    def pdf_bytes(self) -> bytes:
        """Close the document (the last footer, the page counts) and return the PDF."""
        self.alias_nb_pages(PAGES_ALIAS)
        return bytes(self.output())

    def paragraph(self, h: float, text: str, link: str | None = None) -> None:
        """Write `text` in Noto Sans (emoji in Noto Emoji) over the full width, wrapped at
        spaces (inside a word only when the word alone is wider than a line), `h` per line,
        breaking pages as needed: what `multi_cell(0, h, text)` draws, in linear time.

        fpdf2 2.8's line breaker sums the width of the whole line so far for every
        character it adds (`CurrentLine.width`), so a 4 KB message cost ~60 ms and a ticket
        of 400 such messages 30-50 s of CPU. Here each character is measured once per font
        size, a line's width is a running sum of its words', and a line is set with `cell`
        in runs of one font each, which also spares fpdf2's per-character fallback lookup.
        """
        room = self.w - self.l_margin - self.r_margin - 2 * self.c_margin
        lines = self._wrap(text, room)
        self.set_fallback_fonts([])
        try:
            for line in lines:
                self._line(h, line, link or "")
        finally:
            self.set_fallback_fonts([EMOJI_FAMILY])

    def _line(self, h: float, line: str, link: str) -> None:
        if self._emoji.isdisjoint(line):
            self.cell(0, h, line, link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            return
        size = self.font_size_pt
        widths = self._widths_at(size)
        margin = self.c_margin
        self.x = self.l_margin + margin
        self.c_margin = 0  # runs join without the cell padding between them
        try:
            for run, emoji in _runs(line, self._emoji):
                self.set_font(EMOJI_FAMILY if emoji else TEXT_FAMILY, size=size)
                width = sum(map(widths.__getitem__, run))
                self.cell(width, h, run, link=link, new_x=XPos.RIGHT, new_y=YPos.TOP)
        finally:
            self.c_margin = margin
            self.set_font(TEXT_FAMILY, size=size)
        self.ln(h)

    def _widths_at(self, size: float) -> dict[str, float]:
        widths = self._widths.get(size)
        if widths is None:
            widths = self._widths[size] = _CharWidths(self, size)
        return widths

    def _wrap(self, text: str, room: float) -> list[str]:
        width_of = self._widths_at(self.font_size_pt).__getitem__
        space = width_of(" ")
        lines: list[str] = []
        for par in text.split("\n"):
            line: list[str] = []
            used = 0.0
            # Split on single spaces: a run of spaces stays, only the one a line ends on goes.
            for word in par.split(" "):
                width = sum(map(width_of, word))
                if line and used + space + width > room:
                    lines.append(" ".join(line))
                    line, used = [], 0.0
                if width > room:  # wider than a line alone: cut it where it overflows
                    cut, used = 0, 0.0
                    for i, char in enumerate(word):
                        if used + width_of(char) > room and i > cut:
                            lines.append(word[cut:i])
                            cut, used = i, 0.0
                        used += width_of(char)
                    line.append(word[cut:])
                    continue
                used = used + space + width if line else width
                line.append(word)
            lines.append(" ".join(line))
        return lines


def _ttf(font: CoreFont | TTFFont) -> TTFFont:
    assert isinstance(font, TTFFont)  # add_font loaded a .ttf file
    return font


def _runs(line: str, emoji: frozenset[str]) -> list[tuple[str, bool]]:
    """`line` cut into runs of one font: (text, in the emoji font)."""
    runs: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(line) + 1):
        if i == len(line) or (line[i] in emoji) != (line[start] in emoji):
            runs.append((line[start:i], line[start] in emoji))
            start = i
    return runs


class _CharWidths(dict[str, float]):
    """Character -> width in mm at one font size, in the font `paragraph` sets it in."""

    def __init__(self, pdf: TranscriptDocument, size: float) -> None:
        super().__init__()
        self._pdf = pdf
        self._size = size

    def __missing__(self, char: str) -> float:
        pdf = self._pdf
        font = pdf._emoji_font if char in pdf._emoji else pdf._text_font
        _, points = font.get_text_width(char, self._size, None)
        width = self[char] = points / pdf.k
        return width
