"""Quick replies: a user's categories of ready-made text replies (models and validation).

A user (an agent, a manager, or the bootstrap admin) owns their quick replies; they are the
same on every number the user serves, and nobody else sees them. Limits from the desk module
we model: a category name has at most 60 characters, a reply title at most 30; a reply's text
is otherwise unlimited, but must fit one WhatsApp text message (4,096 characters).

Names and titles are unique per owner and per category, compared case- and
accent-insensitively: that uniqueness is what makes creating one idempotent.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bot.domain.config import TEXT_BODY_MAX
from bot.domain.contacts import fold

CATEGORY_NAME_MAX: Final = 60
REPLY_TITLE_MAX: Final = 30
REPLY_TEXT_MAX: Final = TEXT_BODY_MAX
# Bounds per owner and per category, so that a desk can load a user's replies at once.
CATEGORIES_MAX: Final = 200
REPLIES_PER_CATEGORY_MAX: Final = 500


def natural_key(label: str) -> str:
    """What makes two names or titles "the same": case, accents and spacing ignored."""
    return " ".join(fold(label).split())


def _one_line(value: str) -> str:
    if any(c in value for c in "\r\n\t"):
        raise ValueError("must be a single line")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CategoryInput(_Input):
    """The body of `POST /api/v1/quick-replies/categories` and of its `PUT`."""

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=CATEGORY_NAME_MAX),
    ]

    _line = field_validator("name")(_one_line)


class ReplyInput(_Input):
    """The body of `POST .../categories/{category_id}/replies` and of a reply's `PUT`."""

    title: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=REPLY_TITLE_MAX),
    ]
    text: Annotated[str, StringConstraints(min_length=1, max_length=REPLY_TEXT_MAX)] = Field(
        description="Sent as typed (line breaks kept); at most one WhatsApp text message."
    )

    _line = field_validator("title")(_one_line)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class QuickReply(BaseModel):
    id: str
    category_id: str
    title: str
    text: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class Category(BaseModel):
    id: str
    name: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    replies: list[QuickReply] = Field(
        default_factory=list, description="By title (case- and accent-insensitive)."
    )


class CategoryPage(BaseModel):
    """The caller's categories by name, each with its replies."""

    items: list[Category]


class ReplyPage(BaseModel):
    items: list[QuickReply]


def sort_replies(replies: list[QuickReply]) -> list[QuickReply]:
    return sorted(replies, key=lambda r: (natural_key(r.title), r.id))


def sort_categories(categories: list[Category]) -> list[Category]:
    return sorted(categories, key=lambda c: (natural_key(c.name), c.id))
