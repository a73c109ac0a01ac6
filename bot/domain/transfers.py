"""Transfer requests: an agent asks the agent serving a customer to hand the ticket over
(issue 19). The holder or a manager of the number accepts or declines; unanswered, the
request expires after the number's `tickets.transfer_request_minutes`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TransferRequestStatus = Literal["pending", "accepted", "declined", "expired"]
TransferAnswer = Literal["accepted", "declined"]


class TransferRequest(BaseModel):
    """One request to take over a ticket, as the API answers it."""

    model_config = ConfigDict(frozen=True)

    id: str
    ticket_id: str
    phone_number_id: str
    requester: str = Field(description="The agent asking to serve the ticket.")
    holder: str = Field(description="The agent who held the ticket when it was asked for.")
    status: TransferRequestStatus
    created_at: AwareDatetime
    expires_at: AwareDatetime
    answered_by: str | None = None
    answered_at: AwareDatetime | None = None

    def at(self, now: datetime) -> TransferRequest:
        """The request as it stands at `now`: a pending one past `expires_at` is expired (the
        store records that at the next answer; until then only the clock says so)."""
        if self.status == "pending" and now >= self.expires_at:
            return self.model_copy(update={"status": "expired"})
        return self
