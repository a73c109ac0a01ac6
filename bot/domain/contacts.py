"""Contacts as the desk searches, filters and reads them (pure, no I/O).

- Search text: `fold` (case and accents away), the index tokens of a name and of a phone
  number, and `Query.parse` (what a typed query means). storage/search.py keeps the index.
- `ContactFilter`: the filters of the contact listing, applied to one contact.
- The API's answers: `ContactHit`, `SearchPage`, `ContactPage`, `TimelinePage`,
  `ImportReport`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain import phones
from bot.domain.errors import InvalidInputError
from bot.domain.models import Contact, TimelineEntry

# The timeline keeps 90 days; a contact with an interaction within them has a history to show.
HISTORY: Final = timedelta(days=90)

PHONE_PREFIX: Final = "#"
# Shorter phone tokens would make every short digit string match half the numbers.
PHONE_SUFFIX_MIN: Final = 7
# A digits-only query shorter than this is not taken as a phone number.
PHONE_QUERY_MIN: Final = 4
_PHONE_MAX_DIGITS: Final = 15
# Bounds on what one name contributes (a pasted paragraph must not bloat the index).
TOKEN_MAX_CHARS: Final = 40
NAME_TOKENS_MAX: Final = 12
# A query of more words than this keeps only the first ones.
QUERY_WORDS_MAX: Final = 5
# Name particles (Portuguese, Spanish, Italian, French) neither indexed nor required.
PARTICLES: Final = frozenset(
    {"d", "da", "das", "de", "del", "des", "di", "do", "dos", "du", "e", "y"}
)
# Brazilian area codes (DDD) have two digits, neither of them 0: a subscriber number typed
# without one is looked up under each.
BR_AREAS: Final = tuple(f"{a}{b}" for a in range(1, 10) for b in range(1, 10))

_WORD = re.compile(r"\w+")
_PHONE_QUERY = re.compile(r"\+?[\d\s\-().]+")
_NOT_DIGIT = re.compile(r"\D")


# --- search text --------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, case-folded.

    "João" and "JOAO" both give "joao"; "Ça" gives "ca".
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", stripped.casefold())


def words(text: str) -> list[str]:
    """The folded words of `text` (letters and digits; `_` separates), in order, deduplicated."""
    found = (w[:TOKEN_MAX_CHARS] for w in _WORD.findall(fold(text).replace("_", " ")))
    return list(dict.fromkeys(found))


def _significant(found: list[str]) -> list[str]:
    # Every index entry costs about 130 bytes of Redis memory per contact; particles carry no
    # search value ("Maria da Silva" is found by "maria" and "silva"). A name made only of
    # particles keeps them.
    kept = [w for w in found if w not in PARTICLES]
    return kept or found


def name_tokens(name: str | None) -> list[str]:
    """The index tokens of a contact's name: its folded words but particles (`da`, `de`, ...)."""
    return [] if not name else _significant(words(name))[:NAME_TOKENS_MAX]


def _is_br(canonical: str) -> bool:
    return (
        canonical.startswith(phones.BR_COUNTRY)
        and len(canonical) in (12, 13)
        and "0" not in canonical[2:4]
    )


def phone_tokens(phone: str | None) -> list[str]:
    """The index tokens of a phone number: `#` + its canonical digits (Brazilian mobiles with
    the ninth digit) from each place a typed number may start.

    A Brazilian number gives its national number only: "5511987654321" gives `#11987654321`
    (`Query.parse` rewrites queries with the country code, without the ninth digit or
    without the area code to this form, which keeps the index at one entry per number). Any
    other number gives its digits from the country code and after its first 1, 2 and 3
    digits (the country code's length is not known).
    Tokens shorter than PHONE_SUFFIX_MIN digits are left out. A query matches a number when
    it is a prefix of one of its tokens, so a number is found while it is being typed.
    """
    digits = phones.digits(phone) if phone else None
    if digits is None:
        return []
    c = phones.canonical(digits)
    starts = [2] if _is_br(c) else [0, 1, 2, 3]
    found = (PHONE_PREFIX + c[s:] for s in starts if len(c) - s >= PHONE_SUFFIX_MIN)
    return list(dict.fromkeys(found))


def _national_forms(n: str) -> list[str]:
    """Spellings of a (possibly partial) Brazilian national number: as typed, and in the
    current form when it may be an old 8-digit mobile ("11 8765-4321" is "11 98765-4321")."""
    forms = [n]
    # Old mobiles started with 6-9. A partial number starting with 9 is more likely the
    # current form being typed; a whole 10-digit one can only be the old form.
    if 3 <= len(n) <= 10 and "0" not in n[:2] and _old_mobile(n[2:], whole=len(n) == 10):
        forms.append(n[:2] + "9" + n[2:])
    return forms


def _old_mobile(subscriber: str, *, whole: bool) -> bool:
    return subscriber[0] in ("6789" if whole else "678")


def _phone_forms(digits: str) -> list[str]:
    """The digit strings a phone query is looked up as (each a prefix of some token)."""
    forms = [digits, *_national_forms(digits)]
    # With the Brazilian country code: the national number after it.
    if digits.startswith(phones.BR_COUNTRY) and len(digits) > 2:
        forms += _national_forms(digits[2:])
    # A Brazilian subscriber number without its area code ("98765-4321", or "8765-4321" in the
    # old mobile form): under every area code.
    if len(digits) <= 9:
        subscribers = [digits]
        if len(digits) <= 8 and _old_mobile(digits, whole=len(digits) == 8):
            subscribers.append("9" + digits)
        forms += [area + d for d in subscribers for area in BR_AREAS]
    return list(dict.fromkeys(forms))


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search. `kind` "name": every prefix must match a word of the name; "phone":
    any prefix (one per spelling of the number) must match a phone token."""

    kind: Literal["name", "phone"]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Query | None:
        """The query a user typed; None when it holds no letter or digit.

        Digits-only input (with '+', spaces, dashes, dots, parentheses) of at least
        PHONE_QUERY_MIN digits is a phone number, matched with or without the country code,
        with or without the area code, and with or without the Brazilian ninth digit;
        anything else is a name, each word a prefix of some word of the contact's name.
        """
        stripped = text.strip()
        if _PHONE_QUERY.fullmatch(stripped):
            digits = _NOT_DIGIT.sub("", stripped)
            if len(digits) >= PHONE_QUERY_MIN:
                digits = digits.lstrip("0") or digits  # a trunk prefix: 0 11 98765-4321
                forms = _phone_forms(digits[:_PHONE_MAX_DIGITS])
                return cls("phone", tuple(PHONE_PREFIX + f for f in forms))
        found = _significant(words(stripped))[:QUERY_WORDS_MAX]
        return cls("name", tuple(found)) if found else None

    @classmethod
    def of_name(cls, text: str) -> Query | None:
        """`text` as a name query whatever it looks like; None without a letter or digit."""
        found = _significant(words(text))[:QUERY_WORDS_MAX]
        return cls("name", tuple(found)) if found else None

    @classmethod
    def of_phone(cls, text: str) -> Query | None:
        """`text` as a phone query; None unless it is a phone number (or a part of one)."""
        query = cls.parse(text)
        return query if query is not None and query.kind == "phone" else None

    def matches(self, contact: Contact) -> bool:
        """What the index answers, computed on one contact (the listing filters use it)."""
        if self.kind == "name":
            have = name_tokens(contact.name)
            return all(any(t.startswith(p) for t in have) for p in self.prefixes)
        have = phone_tokens(contact.phone or contact.wa_id)
        return any(t.startswith(p) for t in have for p in self.prefixes)


# --- listing filters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactFilter:
    """The filters of a number's contact listing; every given one must hold.

    `name` and `phone` match as the search does; `email`, `city` and `document` are
    case- and accent-insensitive substrings; `id` is a contact key, wa_id (any spelling) or
    user id; `since`/`until` bound `last_interaction_at` (inclusive), and a contact that
    never interacted matches no period.
    """

    name: Query | None = None
    phone: Query | None = None
    email: str | None = None
    city: str | None = None
    document: str | None = None
    id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def index_query(self) -> Query | None:
        """The filter the search index can answer, if any (the phone one is narrower)."""
        return self.phone or self.name

    def matches(self, contact: Contact) -> bool:
        if self.name is not None and not self.name.matches(contact):
            return False
        if self.phone is not None and not self.phone.matches(contact):
            return False
        for wanted, value in (
            (self.email, contact.email),
            (self.city, contact.city),
            (self.document, contact.document),
        ):
            if wanted is not None and (value is None or fold(wanted) not in fold(value)):
                return False
        if self.id is not None and not self._is(contact, self.id):
            return False
        if self.since is not None or self.until is not None:
            at = contact.last_interaction_at
            if at is None:
                return False
            if (self.since is not None and at < self.since) or (
                self.until is not None and at > self.until
            ):
                return False
        return True

    @staticmethod
    def _is(contact: Contact, ident: str) -> bool:
        return ident in (contact.key, contact.wa_id, contact.user_id) or (
            phones.contact_key(ident) == contact.key
        )


_CURSOR = re.compile(r"(\d{1,16}):(\d{1,9})")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a number's contacts ordered by last interaction (newest first): the
    next contact has a score (epoch ms) at most `score`, after the first `skip` contacts of
    exactly that score. Survives contacts being added between pages; a contact whose last
    interaction moves between pages may be listed twice or not at all (it moved)."""

    score: int
    skip: int = 0

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises InvalidInputError (field `cursor`) for anything a page did not hand out."""
        found = _CURSOR.fullmatch(text)
        if found is None:
            raise InvalidInputError("cursor must be a next_cursor of a previous page", "cursor")
        return cls(int(found[1]), int(found[2]))

    def __str__(self) -> str:
        return f"{self.score}:{self.skip}"

    def after(self, score: int) -> Cursor:
        """The position after one more contact of `score`."""
        return Cursor(score, self.skip + 1) if score == self.score else Cursor(score, 1)


def has_history(contact: Contact, now: datetime) -> bool:
    """Whether a message in or out happened within the last 90 days (the timeline keeps
    them that long, so the desk has a conversation to show)."""
    at = contact.last_interaction_at
    return at is not None and at >= now - HISTORY


# --- timeline pages ------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_TIMELINE_CURSOR = re.compile(r"(-?\d{1,20}):(.{1,256})", re.DOTALL)


@dataclass(frozen=True, slots=True, order=True)
class TimelineCursor:
    """A position in a timeline: the entries strictly older than (`at`, `id`), the order the
    timeline keeps (Meta's timestamp, then the message id)."""

    micros: int
    id: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineCursor:
        return cls((entry.at - _EPOCH) // _MICROSECOND, entry.id)

    @classmethod
    def parse(cls, text: str) -> TimelineCursor:
        """Raises InvalidInputError (field `cursor`) for anything a page did not hand out."""
        found = _TIMELINE_CURSOR.fullmatch(text)
        if found is None:
            raise InvalidInputError("cursor must be a next_cursor of a previous page", "cursor")
        return cls(int(found[1]), found[2])

    def __str__(self) -> str:
        return f"{self.micros}:{self.id}"


def timeline_page(
    entries: list[TimelineEntry],
    *,
    q: str | None,
    cursor: TimelineCursor | None,
    limit: int,
    order: Literal["asc", "desc"],
) -> tuple[list[TimelineEntry], TimelineCursor | None]:
    """The newest `limit` entries older than `cursor` whose text contains `q` (case- and
    accent-insensitive), sorted by `order`, and the cursor of the next (older) page.

    Args:
        entries: a timeline, oldest first (TimelineStore.list).
    """
    needle = fold(q).strip() if q else None
    picked: list[TimelineEntry] = []
    more = False
    for entry in reversed(entries):
        if cursor is not None and TimelineCursor.of(entry) >= cursor:
            continue
        if needle and (entry.text is None or needle not in fold(entry.text)):
            continue
        if len(picked) == limit:
            more = True
            break
        picked.append(entry)
    next_cursor = TimelineCursor.of(picked[-1]) if more and picked else None
    if order == "asc":
        picked.reverse()
    return picked, next_cursor


# --- API answers --------------------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ServedBy(_Answer):
    """The agent holding the contact's open ticket on that number."""

    agent_id: str
    name: str


class ContactHit(_Answer):
    """One contact on one number, with what the desk needs to decide how to reach them."""

    number: str = Field(description="The phone_number_id the contact wrote to.")
    contact: Contact
    has_history: bool = Field(
        description="A message in or out within the last 90 days (the timeline has it)."
    )
    window_open: bool = Field(
        description="Within 24 hours of the customer's last message: free text may go out."
    )
    served_by: ServedBy | None = Field(
        None, description="The agent serving the contact right now, if any."
    )


class SearchPage(_Answer):
    items: list[ContactHit]
    truncated: bool = Field(
        description="More contacts match than listed: type more of the name or number."
    )


class ContactPage(_Answer):
    items: list[ContactHit]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end. A page may hold "
        "fewer than `limit` items before the end (a filter scans a bounded number of "
        "contacts per call)."
    )


class TimelinePage(_Answer):
    """A contact's messages in and out of the last 90 days (the newest page first)."""

    number: str
    contact: Contact
    window_open: bool
    order: Literal["asc", "desc"] = Field(description="How `items` are sorted.")
    items: list[TimelineEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the older entries; null when there are none."
    )


class ImportRowError(_Answer):
    row: int = Field(description="The record's number in the file; the header is row 1.")
    field: str | None = Field(description="The column at fault (its name in the header).")
    message: str


class ImportReport(_Answer):
    """What a CSV import did. Re-importing the same file reports every row as unchanged."""

    imported: int = Field(description="Contacts created.")
    updated: int = Field(description="Existing contacts that changed.")
    unchanged: int = Field(description="Rows that matched the stored contact already.")
    errors: list[ImportRowError] = Field(description="Rows skipped (the first ones).")
    error_count: int = Field(description="Every skipped row, also those not listed.")
