"""Quick replies: a user's categories of ready-made replies, the same on every number they
serve. Each call works on the caller's own set only (owner = `caller.id`), so another user's
category or reply is simply not found."""

from __future__ import annotations

from bot.domain.auth import Caller
from bot.domain.quick_replies import Category, CategoryInput, QuickReply, ReplyInput
from bot.runtime.deps import Deps


async def create_category(deps: Deps, caller: Caller, data: CategoryInput) -> tuple[Category, bool]:
    """Create a category; idempotent on its name (a name the caller uses answers that
    category). Returns it and whether it was created.

    Raises:
        ConflictError: `limit_reached`.
    """
    return await deps.stores.quick_replies.create_category(caller.id, data, deps.clock.now())


async def rename_category(
    deps: Deps, caller: Caller, category_id: str, data: CategoryInput
) -> Category:
    """Rename a category (the same name again changes nothing).

    Raises:
        NotFoundError: the caller has no such category.
        ConflictError: `name_taken`.
    """
    return await deps.stores.quick_replies.rename_category(
        caller.id, category_id, data, deps.clock.now()
    )


async def delete_category(deps: Deps, caller: Caller, category_id: str) -> bool:
    """Delete a category and its replies; False when there was none (idempotent)."""
    return await deps.stores.quick_replies.delete_category(caller.id, category_id)


async def create_reply(
    deps: Deps, caller: Caller, category_id: str, data: ReplyInput
) -> tuple[QuickReply, bool]:
    """Add a reply; idempotent on title + text. Returns it and whether it was created.

    Raises:
        NotFoundError: the caller has no such category.
        ConflictError: `title_taken` (the title holds another text), `limit_reached`.
    """
    return await deps.stores.quick_replies.create_reply(
        caller.id, category_id, data, deps.clock.now()
    )


async def update_reply(
    deps: Deps, caller: Caller, category_id: str, reply_id: str, data: ReplyInput
) -> QuickReply:
    """Replace a reply's title and text (the same values again change nothing).

    Raises:
        NotFoundError: the caller has no such reply.
        ConflictError: `title_taken`.
    """
    return await deps.stores.quick_replies.update_reply(
        caller.id, category_id, reply_id, data, deps.clock.now()
    )


async def delete_reply(deps: Deps, caller: Caller, category_id: str, reply_id: str) -> bool:
    """Delete a reply; False when there was none (idempotent)."""
    return await deps.stores.quick_replies.delete_reply(caller.id, category_id, reply_id)
