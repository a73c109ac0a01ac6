"""Desk events as the event streams carry them: an id ("<ms>-<seq>", Redis' stream id and the
SSE `id:`), a type and JSON data; and which ids a client may resume after (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

_STREAM_ID: Final = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
# Each half of a stream id is an unsigned 64-bit integer: Redis refuses anything larger
# ("Invalid stream ID"), which twenty digits alone do not rule out.
_U64_MAX: Final = 2**64 - 1
# The id before every id: reading after it returns the whole stream.
START: Final = "0-0"


def is_event_id(value: str) -> bool:
    """Whether `value` is a stream id ("<ms>-<seq>", each part at most 2**64 - 1) that `read`
    may resume after: every value that passes is one Redis accepts."""
    match = _STREAM_ID.fullmatch(value)
    return match is not None and all(int(part) <= _U64_MAX for part in match.groups())


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]
