"""The next opening as a customer reads it: "today at 13:00", "amanhã às 09:00", "el lunes a las
09:00", "on 2 January at 09:00". Pure; a leaf module (no deskline imports).

The phrase is built to follow "We are back …" / "Voltamos …" / "Volvemos …" in the after-hours
message, which is where the `{next_opening}` placeholder sits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

__all__ = ["SUPPORTED_LANGUAGES", "render_next_opening"]


@dataclass(frozen=True, slots=True)
class _Words:
    today: str
    tomorrow: str
    weekday: str  # "{day} {at}", day from `days`
    dated: str  # "{day} {month}"
    dated_with_year: str
    at: str  # before "HH:MM"
    at_one: str  # before "01:00", where Portuguese and Spanish take the singular
    days: tuple[str, ...]  # Monday first, as date.weekday()
    months: tuple[str, ...]
    unknown: str


_EN: Final = _Words(
    today="today",
    tomorrow="tomorrow",
    weekday="{day}",
    dated="on {day} {month}",
    dated_with_year="on {day} {month} {year}",
    at="at",
    at_one="at",
    days=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    months=tuple(
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
    ),
    unknown="as soon as possible",
)
_PT: Final = _Words(
    today="hoje",
    tomorrow="amanhã",
    weekday="{day}",
    dated="em {day} de {month}",
    dated_with_year="em {day} de {month} de {year}",
    at="às",
    at_one="à",
    days=tuple(
        [
            "segunda-feira",
            "terça-feira",
            "quarta-feira",
            "quinta-feira",
            "sexta-feira",
            "sábado",
            "domingo",
        ]
    ),
    months=tuple(
        [
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ]
    ),
    unknown="assim que possível",
)
_ES: Final = _Words(
    today="hoy",
    tomorrow="mañana",
    weekday="el {day}",
    dated="el {day} de {month}",
    dated_with_year="el {day} de {month} de {year}",
    at="a las",
    at_one="a la",
    days=("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    months=tuple(
        [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ]
    ),
    unknown="lo antes posible",
)
_BY_PRIMARY_TAG: Final = {"pt": _PT, "en": _EN, "es": _ES}
SUPPORTED_LANGUAGES: Final = ("pt-BR", "en", "es")
# Beyond this many days the bare "2 January" could be read as a date already past this year.
_YEAR_AFTER_DAYS: Final = 300


def _words(language: str) -> _Words:
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return _BY_PRIMARY_TAG.get(primary, _PT)


def render_next_opening(
    opening: datetime | None, now: datetime, language: str = "pt-BR", *, tz: tzinfo | None = None
) -> str:
    """Say when the number opens next, relative to `now`, in `language` (pt-BR, en or es; by
    primary tag, so `pt_BR` and `es-MX` work; anything else falls back to pt-BR).

    Both instants are read as wall-clock time in the number's zone: `tz` when given (pass the
    number's ZoneInfo), otherwise `opening`'s own tzinfo (`bot.domain.hours` answers with the
    number's
    offset at the opening). Passing `tz` is exact even when a DST change falls between `now`
    and the opening. `None` (no opening within a year) gives a neutral phrase such as "as soon
    as possible", never a placeholder. Raises ValueError for naive datetimes.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    words = _words(language)
    if opening is None:
        return words.unknown
    if opening.tzinfo is None or opening.utcoffset() is None:
        raise ValueError("opening must be timezone-aware")
    zone = tz or opening.tzinfo
    opening = opening.astimezone(zone)
    local_now = now.astimezone(zone)
    days = (opening.date() - local_now.date()).days
    at = words.at_one if opening.hour == 1 else words.at
    clock = f"{at} {opening:%H:%M}"
    if days == 0:
        return f"{words.today} {clock}"
    if days == 1:
        return f"{words.tomorrow} {clock}"
    if 1 < days < 7:
        return f"{words.weekday.format(day=words.days[opening.weekday()])} {clock}"
    template = words.dated_with_year if days > _YEAR_AFTER_DAYS or days < 0 else words.dated
    when = template.format(
        day=opening.day, month=words.months[opening.month - 1], year=opening.year
    )
    return f"{when} {clock}"
