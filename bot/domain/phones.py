"""Phone numbers: E.164 display form, the contact key, and the spellings search should match.

Pure functions, no I/O. A *contact key* identifies one customer as seen by one number:

- a phone number: its digits, with Brazilian mobile numbers in their current 9-digit form, so
  that "55 11 8765-4321" (the pre-2016 form WhatsApp still reports for some accounts) and
  "55 11 98765-4321" are the same contact;
- a business-scoped user id (BSUID, for customers who hide their number behind a username):
  `u:<user_id>`;
- anything else WhatsApp (or a test fixture) puts in `wa_id`: `x:<value>`, so that it can never
  collide with the two forms above.
"""

from __future__ import annotations

import re
from typing import Final

BR_COUNTRY: Final = "55"
USER_PREFIX: Final = "u:"
OTHER_PREFIX: Final = "x:"

# Separators people type in phone numbers; nothing else is dropped.
_SEPARATORS = re.compile(r"[\s\-().]")
# E.164: at most 15 digits, country code first; below 7 digits nothing is a phone number.
_MIN_DIGITS, _MAX_DIGITS = 7, 15


def digits(phone: str) -> str | None:
    """The digits of a phone number typed with an optional '+' and separators, else None.

    `"+55 (11) 98765-4321"` gives `"5511987654321"`; `"PHONE_NUMBER"` or `"123"` gives None.
    """
    text = _SEPARATORS.sub("", phone.strip())
    text = text.removeprefix("+")
    if not text.isascii() or not text.isdigit() or not _MIN_DIGITS <= len(text) <= _MAX_DIGITS:
        return None
    if text[0] == "0":
        return None  # country codes never start with 0
    return text


def _br_area_ok(area: str) -> bool:
    # Brazilian area codes (DDD) are 11..99 and never contain a 0.
    return len(area) == 2 and "0" not in area


def canonical(number_digits: str) -> str:
    """Brazilian mobiles in their 9-digit form; every other number unchanged.

    A Brazilian number is 55 + a 2-digit area code + the subscriber number. Since 2016 mobile
    subscriber numbers have 9 digits starting with 9; the older 8-digit form of the same mobile
    starts with 6, 7, 8 or 9 and gains the leading 9. Landlines (8 digits starting with 2-5)
    have no ninth digit and are left alone.
    """
    d = number_digits
    if d.startswith(BR_COUNTRY) and len(d) == 12 and _br_area_ok(d[2:4]) and d[4] in "6789":
        return d[:4] + "9" + d[4:]
    return d


def contact_key(wa_id_or_key: str) -> str:
    """The key that makes every spelling of one customer's number the same contact.

    Idempotent: a key passes through unchanged, so callers may hand in either a `wa_id` or a
    key they got from storage.
    """
    if wa_id_or_key.startswith((USER_PREFIX, OTHER_PREFIX)):
        return wa_id_or_key
    d = digits(wa_id_or_key)
    if d is None:
        return OTHER_PREFIX + wa_id_or_key
    return canonical(d)


def user_key(user_id: str) -> str:
    """The contact key of a customer known only by a business-scoped user id."""
    return USER_PREFIX + user_id


def e164(phone: str) -> str | None:
    """`+<digits>` for display and sending (Brazilian mobiles in 9-digit form), else None."""
    d = digits(phone)
    return None if d is None else "+" + canonical(d)


def variants(phone: str) -> set[str]:
    """Every spelling a search for `phone` should match: with and without '+', and for a
    Brazilian mobile with and without the ninth digit. A non-number gives itself only.
    """
    d = digits(phone)
    if d is None:
        return {phone}
    c = canonical(d)
    forms = {c, d}
    if c.startswith(BR_COUNTRY) and len(c) == 13 and _br_area_ok(c[2:4]) and c[4] == "9":
        old = c[:4] + c[5:]
        if old[4] in "6789":
            forms.add(old)
    return forms | {"+" + f for f in forms}
