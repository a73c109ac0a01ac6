"""Contacts CSV import: the file read into rows to store and per-row errors (pure, no I/O).

The file has a header row. `phone` is required; `name`, `email`, `city` and `document` are
known columns (a few Portuguese and common spellings are accepted: `telefone`, `nome`,
`cidade`, `cpf`, ...); every other named column is kept in the contact's `extra`. The
delimiter is whichever of `,` `;` `tab` the header uses most (spreadsheets in Brazil write
`;`); the text is UTF-8 (with or without a BOM), else Windows-1252, which is what Excel
writes there.

Row numbers are records as a spreadsheet shows them: the header is row 1. An empty cell
leaves the stored value as it is, so importing a partial file never erases data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from bot.domain import phones
from bot.domain.contacts import fold
from bot.domain.errors import InvalidInputError

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_ROWS: Final = 20_000
MAX_COLUMNS: Final = 40
COLUMN_NAME_MAX: Final = 60
# Per known field; extra values share EXTRA_VALUE_MAX.
FIELD_MAX: Final[Mapping[str, int]] = {"name": 200, "email": 254, "city": 100, "document": 64}
EXTRA_VALUE_MAX: Final = 1000
FILE_FIELD: Final = "file"
# With a country code, written without '+': shorter numbers are national (Brazilian national
# numbers have 10 or 11 digits, so "55 11 98765-4321" is international, "55 98765-4321" is not).
INTERNATIONAL_MIN_DIGITS: Final = 12
COUNTRY_PATTERN: Final = r"^[1-9][0-9]{0,2}$"

KNOWN: Final = ("phone", "name", "email", "city", "document")
_ALIASES: Final[Mapping[str, str]] = {
    **{a: "phone" for a in ("phone", "telefone", "celular", "whatsapp", "wa_id", "mobile",
                            "phone_number", "numero", "fone", "tel")},
    **{a: "name" for a in ("name", "nome", "full_name", "nome_completo")},
    **{a: "email" for a in ("email", "e_mail", "mail")},
    **{a: "city" for a in ("city", "cidade", "municipio")},
    **{a: "document" for a in ("document", "documento", "cpf", "cnpj", "cpf_cnpj", "rg")},
}  # fmt: skip
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DELIMITERS: Final = (",", ";", "\t")


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One valid record: the contact key and the values to store (None: keep what is stored)."""

    row: int
    key: str
    phone: str  # E.164
    wa_id: str  # canonical digits
    name: str | None = None
    email: str | None = None
    city: str | None = None
    document: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: list[ImportRow]
    errors: list[RowError]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in Brazil saves "CSV" as Windows-1252; it decodes every byte but five, which
        # a text file does not contain.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise InvalidInputError(
                "the file is not text (UTF-8 or Windows-1252)", FILE_FIELD
            ) from None


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return max(_DELIMITERS, key=header.count)  # ties: the first, ","


def _column(name: str) -> str:
    return _NOT_WORD.sub("_", fold(name)).strip("_")


@dataclass(frozen=True, slots=True)
class _Columns:
    known: Mapping[str, int]  # field -> index
    extra: Mapping[str, int]  # extra column name (as written) -> index


def _columns(header: list[str]) -> _Columns:
    if len(header) > MAX_COLUMNS:
        raise InvalidInputError(f"the file has more than {MAX_COLUMNS} columns", FILE_FIELD)
    known: dict[str, int] = {}
    extra: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            continue  # an unnamed column (a trailing delimiter) has nowhere to go
        if len(name) > COLUMN_NAME_MAX:
            raise InvalidInputError(
                f"column {index + 1}: a column name has at most {COLUMN_NAME_MAX} characters",
                FILE_FIELD,
            )
        target = _ALIASES.get(_column(name))
        if target is not None:
            if target in known:
                raise InvalidInputError(f"two columns hold the {target}", FILE_FIELD)
            known[target] = index
        elif name in extra:
            raise InvalidInputError(f"the column {name!r} appears twice", FILE_FIELD)
        else:
            extra[name] = index
    if "phone" not in known:
        raise InvalidInputError("the header has no phone column", "phone")
    return _Columns(known, extra)


def _records(text: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        yield from reader
    except csv.Error as exc:
        raise InvalidInputError(f"not a CSV file: {exc}", FILE_FIELD) from None


def _phone_digits(text: str, country: str | None) -> str | None:
    """The international digits of a typed number; see `parse_csv` for `country`."""
    typed = text.strip()
    if typed.startswith("00"):
        typed = "+" + typed[2:]  # the international call prefix used in Brazil and Europe
    if country is None or typed.startswith("+"):
        return phones.digits(typed)
    national = phones.digits("1" + typed)  # validates the characters; "1" keeps a leading 0
    if national is None:
        return None
    national = national[1:].lstrip("0")  # a trunk prefix: (011) 98765-4321
    if national.startswith(country) and len(national) >= INTERNATIONAL_MIN_DIGITS:
        return phones.digits(national)  # written with the country code, without the '+'
    return phones.digits(country + national)


def _row(
    number: int, cells: list[str], cols: _Columns, header: list[str], country: str | None
) -> ImportRow:
    """One record as a row to store; raises InvalidInputError naming the column at fault."""
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
        raise InvalidInputError("the row has more cells than the header", None)

    def cell(index: int) -> str:
        return cells[index].strip() if index < len(cells) else ""

    values: dict[str, str | None] = {}
    for name, index in cols.known.items():
        text = cell(index)
        column = header[index].strip()
        if name != "phone" and len(text) > FIELD_MAX[name]:
            raise InvalidInputError(f"at most {FIELD_MAX[name]} characters", column)
        values[name] = text or None
    phone_text = values.pop("phone")
    phone_column = header[cols.known["phone"]].strip()
    if phone_text is None:
        raise InvalidInputError("the phone is required", phone_column)
    digits = _phone_digits(phone_text, country)
    if digits is None:
        raise InvalidInputError(
            f"{phone_text!r} is not a phone number (7 to 15 digits, country code first)",
            phone_column,
        )
    email = values.get("email")
    if email is not None and not _EMAIL.fullmatch(email):
        raise InvalidInputError(f"{email!r} is not an e-mail address", header[cols.known["email"]])
    extra: dict[str, str] = {}
    for name, index in cols.extra.items():
        text = cell(index)
        if len(text) > EXTRA_VALUE_MAX:
            raise InvalidInputError(f"at most {EXTRA_VALUE_MAX} characters", name)
        if text:
            extra[name] = text
    canonical = phones.canonical(digits)
    return ImportRow(
        row=number,
        key=phones.contact_key(canonical),
        phone="+" + canonical,
        wa_id=canonical,
        name=values.get("name"),
        email=email,
        city=values.get("city"),
        document=values.get("document"),
        extra=extra,
    )


def parse_csv(data: bytes, *, country: str | None = None) -> ParsedFile:
    """Read a contacts CSV: the valid rows, and an error per invalid row.

    A number written with '+' (or the 00 prefix) is international. Without `country`, so is
    every number (its digits start with the country code). With `country` (a calling code,
    "55"), a number without '+' is national, a leading trunk 0 dropped, unless it already
    starts with that code and has at least INTERNATIONAL_MIN_DIGITS digits ("5511987654321").

    Blank records are skipped. A second row for a contact already in the file (the same
    number in any spelling, ninth digit or not) is an error rather than a silent merge, so
    that importing the file twice yields the same contacts.

    Raises:
        InvalidInputError: the file as a whole is unusable (field `file`: too big, not text,
            not CSV, too many rows or columns; field `phone`: no phone column).
    """
    if len(data) > MAX_BYTES:
        raise InvalidInputError(f"the file is larger than {MAX_BYTES} bytes", FILE_FIELD)
    text = _decode(data)
    if "\x00" in text:
        raise InvalidInputError("the file is not text (it holds NUL bytes)", FILE_FIELD)
    records = _records(text)
    header = next(records, None)
    if header is None or not any(h.strip() for h in header):
        raise InvalidInputError("the file is empty: a header row is required", FILE_FIELD)
    cols = _columns(header)
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for number, cells in enumerate(records, start=2):
        if not any(c.strip() for c in cells):
            continue
        if number - 1 > MAX_ROWS:
            raise InvalidInputError(f"the file has more than {MAX_ROWS} rows", FILE_FIELD)
        try:
            row = _row(number, cells, cols, header, country)
        except InvalidInputError as exc:
            errors.append(RowError(number, exc.field, exc.message))
            continue
        if row.key in first_row:
            errors.append(
                RowError(
                    number,
                    header[cols.known["phone"]].strip(),
                    f"the same contact as row {first_row[row.key]}; this row was skipped",
                )
            )
            continue
        first_row[row.key] = number
        rows.append(row)
    return ParsedFile(rows, errors)
