"""bot.domain.phones: E.164, the contact key (Brazil's ninth digit), search variants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import phones

# Brazilian area codes never contain a 0.
_area = st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda t: f"{t[0]}{t[1]}")
_br_mobile_old = st.builds(
    lambda area, first, rest: f"55{area}{first}{rest}",
    _area,
    st.sampled_from("6789"),
    st.text("0123456789", min_size=7, max_size=7),
)
_br_landline = st.builds(
    lambda area, first, rest: f"55{area}{first}{rest}",
    _area,
    st.sampled_from("2345"),
    st.text("0123456789", min_size=7, max_size=7),
)
_any_digits = st.text("0123456789", min_size=7, max_size=15).filter(lambda d: d[0] != "0")


@pytest.mark.parametrize(
    ("wa_id", "key"),
    [
        ("551187654321", "5511987654321"),  # old 8-digit mobile gains the ninth digit
        ("5511987654321", "5511987654321"),
        ("+55 (11) 98765-4321", "5511987654321"),
        ("551133334444", "551133334444"),  # landline: no ninth digit
        ("16505551234", "16505551234"),
        ("550187654321", "550187654321"),  # area code with a 0 is not Brazilian: unchanged
        ("PHONE_NUMBER", "x:PHONE_NUMBER"),
        ("u:US.123", "u:US.123"),
    ],
)
def test_contact_key_examples(wa_id: str, key: str) -> None:
    assert phones.contact_key(wa_id) == key


@given(_br_mobile_old)
def test_brazilian_mobile_with_and_without_ninth_digit_is_one_contact(old: str) -> None:
    new = old[:4] + "9" + old[4:]
    assert phones.contact_key(old) == phones.contact_key(new) == new
    assert phones.e164(old) == "+" + new


@given(_br_landline)
def test_brazilian_landline_is_left_alone(number: str) -> None:
    assert phones.contact_key(number) == number


@given(st.one_of(_any_digits, _br_mobile_old, _br_landline, st.text(max_size=20)))
def test_contact_key_is_idempotent(value: str) -> None:
    key = phones.contact_key(value)
    assert phones.contact_key(key) == key


@given(st.one_of(_any_digits, _br_mobile_old, _br_landline))
def test_every_variant_maps_to_the_same_contact(number: str) -> None:
    forms = phones.variants(number)
    assert number in forms
    assert "+" + number in forms
    assert {phones.contact_key(v) for v in forms} == {phones.contact_key(number)}


@given(_br_mobile_old)
def test_variants_of_a_brazilian_mobile_include_both_forms(old: str) -> None:
    new = old[:4] + "9" + old[4:]
    assert phones.variants(new) == phones.variants(old) == {old, new, "+" + old, "+" + new}


@given(_any_digits)
def test_e164_is_plus_and_digits(number: str) -> None:
    out = phones.e164(number)
    assert out is not None
    assert out.startswith("+")
    assert out[1:].isdigit()
    assert phones.e164(out) == out


@pytest.mark.parametrize(
    "value", ["", "123", "PHONE_NUMBER", "0551187654321", "1" * 16, "١٢٣٤٥٦٧٨"]
)
def test_non_numbers_have_no_e164(value: str) -> None:
    assert phones.e164(value) is None
    assert phones.variants(value) == {value}
