"""Console page of the user's quick replies: categories and their replies, add and delete.

The user's own set, as `/api/v1/quick-replies` keeps it (`QuickRepliesStore`, owner = the
caller's id), validated by the API's input models; the ticket page offers them in its reply
box.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.appkeys import deps_key, stores_key
from bot.domain.config import invalid_input, is_valid_id
from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.quick_replies import CategoryInput, ReplyInput
from bot.services import quick_replies
from handlers.console.context import user_of
from handlers.console.render import render_page

PAGE = "/console/quick-replies"


async def _render(
    request: web.Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    owner = user_of(request).caller.id
    categories = await request.app[stores_key].quick_replies.categories(owner)
    context: dict[str, Any] = {
        "categories": categories,
        "errors": errors or {},
        "values": values or {},
        "section": "quick-replies",
    }
    return await render_page(request, "quick_replies.html", context, status=status)


async def page(request: web.Request) -> web.Response:
    return await _render(request)


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not is_valid_id(value):
        raise NotFoundError("Not found.")
    return value


async def create_category(request: web.Request) -> web.Response:
    """A new category; a name already used answers that one (idempotent, as the API)."""
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        data = CategoryInput.model_validate({"name": name})
        await quick_replies.create_category(request.app[deps_key], user_of(request).caller, data)
    except ValidationError as exc:
        message = invalid_input(exc).message
        return await _render(request, errors={"name": message}, values={"name": name}, status=422)
    except ConflictError as exc:
        return await _render(
            request, errors={"name": exc.message}, values={"name": name}, status=409
        )
    raise web.HTTPSeeOther(PAGE)


async def delete_category(request: web.Request) -> web.Response:
    """Delete a category and its replies. Idempotent."""
    caller = user_of(request).caller
    await quick_replies.delete_category(request.app[deps_key], caller, _id(request, "category_id"))
    raise web.HTTPSeeOther(PAGE)


async def create_reply(request: web.Request) -> web.Response:
    """A new reply in a category; the same title and text again answers the existing one."""
    category_id = _id(request, "category_id")
    form = await request.post()
    values = {"title": str(form.get("title", "")), "text": str(form.get("text", ""))}
    prefix = f"{category_id}."
    try:
        data = ReplyInput.model_validate(values)
        await quick_replies.create_reply(
            request.app[deps_key], user_of(request).caller, category_id, data
        )
    except ValidationError as exc:
        error = invalid_input(exc)
        field = prefix + (error.field or "title")
        values = {prefix + k: v for k, v in values.items()}
        return await _render(request, errors={field: error.message}, values=values, status=422)
    except ConflictError as exc:
        values = {prefix + k: v for k, v in values.items()}
        return await _render(
            request, errors={prefix + "title": exc.message}, values=values, status=409
        )
    raise web.HTTPSeeOther(f"{PAGE}#category-{category_id}")


async def delete_reply(request: web.Request) -> web.Response:
    """Delete a reply. Idempotent."""
    await quick_replies.delete_reply(
        request.app[deps_key],
        user_of(request).caller,
        _id(request, "category_id"),
        _id(request, "reply_id"),
    )
    raise web.HTTPSeeOther(PAGE)
