"""A console session as the console sees it (stored by storage/console_sessions.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session. `number` is the number last selected in the header ("" when none)."""

    id: str
    token_hash: str
    caller: str
    csrf: str
    created_at: datetime
    number: str = ""
