"""bot.domain.opening_text: the next opening as a customer reads it, in the number's zone and
language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.opening_text import SUPPORTED_LANGUAGES, render_next_opening

SP = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 12, 31, 18, 30, tzinfo=SP)  # a Thursday


def _sp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SP)


@pytest.mark.parametrize(
    ("opening", "language", "text"),
    [
        ("2026-12-31T19:00", "en", "today at 19:00"),
        ("2026-12-31T19:00", "pt-BR", "hoje às 19:00"),
        ("2026-12-31T19:00", "es", "hoy a las 19:00"),
        ("2027-01-01T09:00", "en", "tomorrow at 09:00"),
        ("2027-01-01T09:00", "pt-BR", "amanhã às 09:00"),
        ("2027-01-01T09:00", "es", "mañana a las 09:00"),
        ("2027-01-01T01:00", "pt-BR", "amanhã à 01:00"),
        ("2027-01-01T01:00", "es", "mañana a la 01:00"),
        ("2027-01-04T09:00", "en", "Monday at 09:00"),
        ("2027-01-04T09:00", "pt-BR", "segunda-feira às 09:00"),
        ("2027-01-04T09:00", "es", "el lunes a las 09:00"),
        ("2027-01-06T13:00", "en", "Wednesday at 13:00"),  # six days ahead: still a weekday
        ("2027-01-07T09:00", "en", "on 7 January at 09:00"),  # a week ahead: a date
        ("2027-01-07T09:00", "pt-BR", "em 7 de janeiro às 09:00"),
        ("2027-01-07T09:00", "es", "el 7 de enero a las 09:00"),
        ("2027-12-01T09:00", "en", "on 1 December 2027 at 09:00"),  # far: the year is said
        ("2027-01-04T09:00", "pt_BR", "segunda-feira às 09:00"),
        ("2027-01-04T09:00", "es-MX", "el lunes a las 09:00"),
        ("2027-01-04T09:00", "fr", "segunda-feira às 09:00"),  # unknown: pt-BR, the default
    ],
)
def test_phrases(opening: str, language: str, text: str) -> None:
    assert render_next_opening(_sp(opening), NOW, language) == text


def test_default_language_is_portuguese() -> None:
    assert render_next_opening(_sp("2027-01-01T09:00"), NOW) == "amanhã às 09:00"


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "as soon as possible"), ("pt-BR", "assim que possível"), ("es", "lo antes posible")],
)
def test_no_opening_within_a_year_is_a_neutral_phrase(language: str, text: str) -> None:
    assert render_next_opening(None, NOW, language) == text


def test_now_is_read_in_the_numbers_zone_not_its_own() -> None:
    # 01:30 UTC on 1 January is still 31 December 22:30 in São Paulo: 09:00 is "tomorrow".
    now_utc = datetime(2027, 1, 1, 1, 30, tzinfo=UTC)
    assert render_next_opening(_sp("2027-01-01T09:00"), now_utc, "en") == "tomorrow at 09:00"


def test_tz_keeps_the_day_right_across_a_dst_change() -> None:
    # New York, 8 March 2026: 23:30 EST on the 7th, opening 09:00 EDT on the 8th. Read with the
    # opening's fixed offset, now would be 00:30 on the 8th ("today"); with the zone, "tomorrow".
    ny = ZoneInfo("America/New_York")
    now = datetime(2026, 3, 7, 23, 30, tzinfo=ny)
    opening = datetime(2026, 3, 8, 9, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert render_next_opening(opening, now, "en") == "today at 09:00"
    assert render_next_opening(opening, now, "en", tz=ny) == "tomorrow at 09:00"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        render_next_opening(datetime(2027, 1, 1, 9), NOW, "en")
    with pytest.raises(ValueError, match="aware"):
        render_next_opening(None, datetime(2027, 1, 1, 9), "en")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 366 * 24 * 60),
    st.sampled_from([*SUPPORTED_LANGUAGES, "pt", "en-GB", "xx"]),
)
def test_every_opening_within_a_year_renders_a_phrase_with_its_clock(
    minutes: int, language: str
) -> None:
    opening = (NOW + timedelta(minutes=minutes)).astimezone(SP)
    text = render_next_opening(opening, NOW, language)
    assert text.endswith(f"{opening:%H:%M}")
    assert "{" not in text
    days = (opening.date() - NOW.date()).days
    if days >= 7:
        assert str(opening.day) in text
