"""Contacts CSV parsing: columns, delimiters, encodings, per-row errors, national numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.contacts_import import MAX_COLUMNS, MAX_ROWS, ImportRow, RowError, parse_csv
from bot.domain.errors import InvalidInputError


def test_known_columns_in_any_spelling_and_extra_columns() -> None:
    data = (
        "Nome Completo,Celular,E-mail,Município,CPF/CNPJ,Plano,Vendedor,\n"
        "João Silva, +55 (11) 98765-4321 ,joao@example.com,São Paulo,123,ouro,,\n"
    ).encode()
    parsed = parse_csv(data)
    assert parsed.errors == []
    assert parsed.rows == [
        ImportRow(
            row=2,
            key="5511987654321",
            phone="+5511987654321",
            wa_id="5511987654321",
            name="João Silva",
            email="joao@example.com",
            city="São Paulo",
            document="123",
            extra={"Plano": "ouro"},  # an empty cell is not stored; the unnamed column ignored
        )
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_the_one_the_header_uses(delimiter: str) -> None:
    text = delimiter.join(["name", "phone", "city"]) + "\n"
    text += delimiter.join(["Ana, a Lima", "5511987654321", "Rio"]) + "\n"
    if delimiter == ",":
        text = text.replace("Ana, a Lima", '"Ana, a Lima"')
    [row] = parse_csv(text.encode()).rows
    assert (row.name, row.city) == ("Ana, a Lima", "Rio")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_utf8_with_or_without_bom_and_windows_1252(encoding: str) -> None:
    data = "telefone;nome\r\n5511987654321;Conceição Araújo\r\n".encode(encoding)
    [row] = parse_csv(data).rows
    assert row.name == "Conceição Araújo"


def test_bad_rows_are_reported_by_row_and_column_and_the_rest_imported() -> None:
    data = (
        (
            "phone,name,email,city\n"
            "5511987654321,Ana,,\n"  # 2
            ",Sem Número,,\n"  # 3
            "abc,Letras,,\n"  # 4
            "123,Curto,,\n"  # 5
            "5521912345678,Bia,bia@,\n"  # 6
            "5531955554444," + "N" * 201 + ",,\n"  # 7
            "5541955554444,Extra,,,sobra\n"  # 8
            "551187654321,Ana de novo,,\n"  # 9: Ana without the ninth digit
            ",,,\n"  # 10: blank, skipped
            "5551955554444,Eva,eva@example.com,Porto Alegre\n"  # 11
        ).encode()
    )
    parsed = parse_csv(data)
    assert [(r.row, r.name) for r in parsed.rows] == [(2, "Ana"), (11, "Eva")]
    assert [(e.row, e.field) for e in parsed.errors] == [
        (3, "phone"),
        (4, "phone"),
        (5, "phone"),
        (6, "email"),
        (7, "name"),
        (8, None),
        (9, "phone"),
    ]
    assert parsed.errors[-1] == RowError(
        9, "phone", "the same contact as row 2; this row was skipped"
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "file"),
        (b"\n\n", "file"),
        (b"name,email\nAna,a@b.co\n", "phone"),
        (b"phone,telefone\n1,2\n", "file"),  # two phone columns
        (b"phone,x,x\n1,2,3\n", "file"),  # a repeated column
        ((",".join(["phone"] + [f"c{i}" for i in range(MAX_COLUMNS)]) + "\n").encode(), "file"),
        (b"phone\n" + b"5511987654321\n" * (MAX_ROWS + 1), "file"),
        (b'phone\n"unterminated\x00', "file"),
        (b"\x81\x8d\x8f", "file"),
    ],
)
def test_an_unusable_file_is_refused_whole(data: bytes, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_csv(data)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("typed", "country", "e164"),
    [
        ("+55 11 98765-4321", None, "+5511987654321"),
        ("5511987654321", None, "+5511987654321"),
        ("551187654321", None, "+5511987654321"),  # the ninth digit is added
        ("11 98765-4321", "55", "+5511987654321"),
        ("(011) 8765-4321", "55", "+5511987654321"),
        ("55 11 98765-4321", "55", "+5511987654321"),  # already international
        ("(55) 99876-5432", "55", "+5555998765432"),  # area code 55: national
        ("+1 415 555 0100", "55", "+14155550100"),
        ("0014155550100", "55", "+14155550100"),
        ("0014155550100", None, "+14155550100"),
    ],
)
def test_national_numbers_take_the_country_code(typed: str, country: str | None, e164: str) -> None:
    [row] = parse_csv(f"phone\n{typed}\n".encode(), country=country).rows
    assert row.phone == e164


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30), max_size=6)
)
def test_any_text_parses_or_is_refused_with_a_field(cells: list[str]) -> None:
    data = ("phone,name\n" + "\n".join(",".join([c, c]) for c in cells)).encode()
    refused: InvalidInputError | None = None
    try:
        parsed = parse_csv(data)
    except InvalidInputError as exc:
        refused = exc
    else:
        rows = {r.row for r in parsed.rows}
        assert rows.isdisjoint({e.row for e in parsed.errors})
        assert all(r.phone.startswith("+") for r in parsed.rows)
    assert refused is None or refused.field == "file"
