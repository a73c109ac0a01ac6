"""Read receipts and typing indicators as the API answers them (issue 19)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TypingResult = Literal["sent", "throttled", "off"]


class TypingView(BaseModel):
    """`POST /api/v1/tickets/{id}/typing`."""

    model_config = ConfigDict(frozen=True)

    typing: TypingResult = Field(
        description="`sent`: WhatsApp shows the customer a typing indicator (and the last "
        "message as read); `throttled`: one went out less than 20 s ago; `off`: none (the "
        "caller does not hold the ticket, the number's `tickets.read_receipts` is off, or "
        "the 24-hour window is closed)."
    )
