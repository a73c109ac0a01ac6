"""Quick replies: per owner, categories of text replies (`dl:qr:*`).

Every write is one Lua script, so a name or title index never disagrees with the records:
- a category name and a reply title (by natural key) are unique per owner and per category;
- creating what exists already answers the existing record (idempotent on the name, or on
  title + text), a rename onto another's name is refused;
- deleting a category deletes its replies.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Final

from redis.asyncio import Redis

from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.quick_replies import (
    CATEGORIES_MAX,
    REPLIES_PER_CATEGORY_MAX,
    Category,
    CategoryInput,
    QuickReply,
    ReplyInput,
    natural_key,
    sort_categories,
    sort_replies,
)
from storage import keys, lua

# Attempts at a fresh random id (a collision of 48-bit ids within one owner is not expected).
_ID_ATTEMPTS: Final = 5


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _new_id() -> str:
    return secrets.token_hex(6)


def _doc(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _category_missing(category_id: str) -> NotFoundError:
    return NotFoundError(f"quick reply category {category_id} not found")


def _reply_missing(reply_id: str) -> NotFoundError:
    return NotFoundError(f"quick reply {reply_id} not found")


def _status(result: list[Any]) -> tuple[str, str | None]:
    status = _text(result[0])
    return status, (_text(result[1]) if len(result) > 1 else None)


class QuickRepliesStore:
    """One owner's quick replies; `owner` is the caller's id (bot.domain.auth.Caller.id).

    Reads and writes only `dl:qr:<owner>:*`, so no call can reach another owner's replies: a
    category or reply id of someone else is simply not found.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create_category = lua.register(redis, "quick_replies_create_category")
        self._rename_category = lua.register(redis, "quick_replies_rename_category")
        self._delete_category = lua.register(redis, "quick_replies_delete_category")
        self._create_reply = lua.register(redis, "quick_replies_create_reply")
        self._update_reply = lua.register(redis, "quick_replies_update_reply")
        self._delete_reply = lua.register(redis, "quick_replies_delete_reply")

    # --- reads ----------------------------------------------------------------------------

    async def categories(self, owner: str) -> list[Category]:
        """Every category of the owner by name, each with its replies (two round trips)."""
        raw = await self._redis.hgetall(keys.quick_reply_categories(owner))
        found = [Category.model_validate_json(v) for v in raw.values()]
        async with self._redis.pipeline(transaction=False) as pipe:
            for category in found:
                pipe.hvals(keys.quick_replies(owner, category.id))
            replies = await pipe.execute()
        return sort_categories(
            [
                c.model_copy(
                    update={
                        "replies": sort_replies([QuickReply.model_validate_json(r) for r in rs])
                    }
                )
                for c, rs in zip(found, replies, strict=True)
            ]
        )

    async def category(self, owner: str, category_id: str) -> Category:
        """One category with its replies.

        Raises:
            NotFoundError: the owner has no such category.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.quick_reply_categories(owner), category_id)
            pipe.hvals(keys.quick_replies(owner, category_id))
            raw, replies = await pipe.execute()
        if raw is None:
            raise _category_missing(category_id)
        category = Category.model_validate_json(raw)
        items = sort_replies([QuickReply.model_validate_json(r) for r in replies])
        return category.model_copy(update={"replies": items})

    async def reply(self, owner: str, category_id: str, reply_id: str) -> QuickReply:
        """Raises NotFoundError: the owner has no such reply in that category."""
        raw = await self._redis.hget(keys.quick_replies(owner, category_id), reply_id)
        if raw is None:
            raise _reply_missing(reply_id)
        return QuickReply.model_validate_json(raw)

    # --- writes ---------------------------------------------------------------------------

    async def create_category(
        self, owner: str, data: CategoryInput, at: datetime
    ) -> tuple[Category, bool]:
        """Create a category; idempotent on its name (natural key): a name the owner already
        uses answers that category. Returns it and whether it was created.

        Raises:
            ConflictError: `limit_reached`, the owner has CATEGORIES_MAX categories.
        """
        nk = natural_key(data.name)
        for _ in range(_ID_ATTEMPTS):
            category_id = _new_id()
            doc = _doc(
                id=category_id,
                name=data.name,
                key=nk,
                created_at=at.isoformat(),
                updated_at=at.isoformat(),
            )
            status, stored = _status(
                await self._create_category(
                    keys=[keys.quick_reply_categories(owner), keys.quick_reply_names(owner)],
                    args=[category_id, nk, doc, CATEGORIES_MAX],
                )
            )
            if status == "full":
                raise ConflictError(
                    "limit_reached", f"at most {CATEGORIES_MAX} quick reply categories"
                )
            if status != "retry" and stored is not None:
                if status == "exists":
                    return await self.category(
                        owner, Category.model_validate_json(stored).id
                    ), False
                return Category.model_validate_json(stored), True
        raise ConflictError("busy", "could not allocate an id; retry")

    async def rename_category(
        self, owner: str, category_id: str, data: CategoryInput, at: datetime
    ) -> Category:
        """Set the category's name (the same name again changes nothing).

        Raises:
            NotFoundError: no such category.
            ConflictError: `name_taken`, another category of the owner has that name.
        """
        status, _ = _status(
            await self._rename_category(
                keys=[keys.quick_reply_categories(owner), keys.quick_reply_names(owner)],
                args=[category_id, natural_key(data.name), data.name, at.isoformat()],
            )
        )
        if status == "missing":
            raise _category_missing(category_id)
        if status == "taken":
            raise ConflictError("name_taken", f"another category is named {data.name!r}")
        return await self.category(owner, category_id)

    async def delete_category(self, owner: str, category_id: str) -> bool:
        """Delete the category and its replies; False when it did not exist."""
        done = await self._delete_category(
            keys=[
                keys.quick_reply_categories(owner),
                keys.quick_reply_names(owner),
                keys.quick_replies(owner, category_id),
                keys.quick_reply_titles(owner, category_id),
            ],
            args=[category_id],
        )
        return bool(done)

    async def create_reply(
        self, owner: str, category_id: str, data: ReplyInput, at: datetime
    ) -> tuple[QuickReply, bool]:
        """Add a reply to a category; idempotent on title + text: the same title with the same
        text answers the existing reply. Returns it and whether it was created.

        Raises:
            NotFoundError: no such category.
            ConflictError: `title_taken` (the title holds another text), `limit_reached`.
        """
        nk = natural_key(data.title)
        for _ in range(_ID_ATTEMPTS):
            reply_id = _new_id()
            doc = _doc(
                id=reply_id,
                category_id=category_id,
                title=data.title,
                text=data.text,
                key=nk,
                created_at=at.isoformat(),
                updated_at=at.isoformat(),
            )
            status, stored = _status(
                await self._create_reply(
                    keys=[
                        keys.quick_reply_categories(owner),
                        keys.quick_replies(owner, category_id),
                        keys.quick_reply_titles(owner, category_id),
                    ],
                    args=[category_id, reply_id, nk, doc, data.text, REPLIES_PER_CATEGORY_MAX],
                )
            )
            if status == "missing":
                raise _category_missing(category_id)
            if status == "taken":
                raise ConflictError(
                    "title_taken", f"another reply in this category is titled {data.title!r}"
                )
            if status == "full":
                raise ConflictError(
                    "limit_reached", f"at most {REPLIES_PER_CATEGORY_MAX} replies per category"
                )
            if status != "retry" and stored is not None:
                return QuickReply.model_validate_json(stored), status == "created"
        raise ConflictError("busy", "could not allocate an id; retry")

    async def update_reply(
        self, owner: str, category_id: str, reply_id: str, data: ReplyInput, at: datetime
    ) -> QuickReply:
        """Set a reply's title and text (the same values again change nothing).

        Raises:
            NotFoundError: no such reply in that category.
            ConflictError: `title_taken`, another reply of the category has that title.
        """
        status, stored = _status(
            await self._update_reply(
                keys=[
                    keys.quick_replies(owner, category_id),
                    keys.quick_reply_titles(owner, category_id),
                ],
                args=[reply_id, natural_key(data.title), data.title, data.text, at.isoformat()],
            )
        )
        if status == "taken":
            raise ConflictError(
                "title_taken", f"another reply in this category is titled {data.title!r}"
            )
        if status == "missing" or stored is None:
            raise _reply_missing(reply_id)
        return QuickReply.model_validate_json(stored)

    async def delete_reply(self, owner: str, category_id: str, reply_id: str) -> bool:
        """Delete a reply; False when it did not exist."""
        done = await self._delete_reply(
            keys=[
                keys.quick_replies(owner, category_id),
                keys.quick_reply_titles(owner, category_id),
            ],
            args=[reply_id],
        )
        return bool(done)
