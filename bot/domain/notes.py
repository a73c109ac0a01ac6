"""Internal notes: what agents write about a ticket or a contact for each other, never sent to
the customer (issue 19)."""

from __future__ import annotations

from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# A note is the desk's, not a WhatsApp message: its limit is ours, not Meta's text body's.
NOTE_TEXT_MAX: Final = 4096


class NoteInput(BaseModel):
    """The body of `POST .../notes`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=NOTE_TEXT_MAX, description="1-4,096 characters.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class Note(BaseModel):
    """One internal note: who wrote it (a caller id), when, and what."""

    model_config = ConfigDict(frozen=True)

    id: str
    author: str = Field(description="The id of the caller who wrote it (an agent, or admin).")
    at: AwareDatetime
    text: str


class NotePage(BaseModel):
    """Notes, oldest first."""

    items: list[Note]
