"""`/api/v1/quick-replies`: the caller's categories of ready-made replies.

Quick replies belong to the caller (an agent, a manager, or the bootstrap admin), are the
same on every number the caller serves, and are invisible to everybody else: each call works
on the caller's own set only, so another user's category or reply id is simply not found.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain import auth
from bot.domain.config import parse_body
from bot.domain.errors import NotFoundError
from bot.domain.quick_replies import CategoryInput, CategoryPage, ReplyInput, ReplyPage
from bot.services import quick_replies
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import QuickRepliesQuery, read_query


def _owner(request: web.Request) -> str:
    return caller_of(request).id


def _category_id(request: web.Request) -> str:
    return path_id(request, "category_id")


def _reply_id(request: web.Request) -> str:
    return path_id(request, "reply_id")


async def get_book(request: web.Request) -> web.Response:
    """Every category of the caller with its replies, by name and title.

    `number` (optional) asks on behalf of one number: 403 when the caller does not serve it,
    otherwise the same set (quick replies are per user, not per number).
    """
    number = read_query(request, QuickRepliesQuery).number
    if number is not None:
        forbid_unless(
            auth.can_read_number(caller_of(request), number), "not attached to this number"
        )
    items = await request.app[stores_key].quick_replies.categories(_owner(request))
    return model_response(CategoryPage(items=items))


async def create_category(request: web.Request) -> web.Response:
    """Create a category (201); a name the caller already uses answers that category (200).
    422 naming `name` (1-60 characters, one line); 409 `limit_reached`."""
    data = parse_body(CategoryInput, await read_json(request))
    category, created = await quick_replies.create_category(
        request.app[deps_key], caller_of(request), data
    )
    return model_response(category, status=201 if created else 200)


async def get_category(request: web.Request) -> web.Response:
    category_id = _category_id(request)
    store = request.app[stores_key].quick_replies
    return model_response(await store.category(_owner(request), category_id))


async def put_category(request: web.Request) -> web.Response:
    """Rename a category; 409 `name_taken` when another category has the name."""
    category_id = _category_id(request)
    data = parse_body(CategoryInput, await read_json(request))
    category = await quick_replies.rename_category(
        request.app[deps_key], caller_of(request), category_id, data
    )
    return model_response(category)


async def delete_category(request: web.Request) -> web.Response:
    """Delete a category and its replies: 204, or 404."""
    category_id = _category_id(request)
    if not await quick_replies.delete_category(
        request.app[deps_key], caller_of(request), category_id
    ):
        raise NotFoundError(f"quick reply category {category_id} not found")
    return web.Response(status=204)


async def list_replies(request: web.Request) -> web.Response:
    category_id = _category_id(request)
    store = request.app[stores_key].quick_replies
    category = await store.category(_owner(request), category_id)
    return model_response(ReplyPage(items=category.replies))


async def create_reply(request: web.Request) -> web.Response:
    """Add a reply (201); the same title with the same text answers that reply (200).
    422 naming `title` (1-30 characters, one line) or `text` (1-4096 characters); 409
    `title_taken` (the title holds another text) or `limit_reached`."""
    category_id = _category_id(request)
    data = parse_body(ReplyInput, await read_json(request))
    reply, created = await quick_replies.create_reply(
        request.app[deps_key], caller_of(request), category_id, data
    )
    return model_response(reply, status=201 if created else 200)


async def get_reply(request: web.Request) -> web.Response:
    category_id, reply_id = _category_id(request), _reply_id(request)
    store = request.app[stores_key].quick_replies
    return model_response(await store.reply(_owner(request), category_id, reply_id))


async def put_reply(request: web.Request) -> web.Response:
    """Replace a reply's title and text; 409 `title_taken`."""
    category_id, reply_id = _category_id(request), _reply_id(request)
    data = parse_body(ReplyInput, await read_json(request))
    reply = await quick_replies.update_reply(
        request.app[deps_key], caller_of(request), category_id, reply_id, data
    )
    return model_response(reply)


async def delete_reply(request: web.Request) -> web.Response:
    """Delete a reply: 204, or 404."""
    category_id, reply_id = _category_id(request), _reply_id(request)
    if not await quick_replies.delete_reply(
        request.app[deps_key], caller_of(request), category_id, reply_id
    ):
        raise NotFoundError(f"quick reply {reply_id} not found")
    return web.Response(status=204)
