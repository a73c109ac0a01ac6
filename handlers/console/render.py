"""Rendering console pages and fragments (Jinja2 through aiohttp-jinja2), and error pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.appkeys import stores_key
from bot.domain.config import StoredNumber
from bot.domain.monitoring import can_monitor
from handlers.console.context import maybe_user, user_of
from handlers.console.forms import dom_id, week_bars

TEMPLATES: Final = Path(__file__).parent / "templates"
STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_ROUTE: Final = "console_static"


def setup_templates(app: web.Application) -> None:
    """The Jinja2 environment of the console: autoescaped, undefined names are errors."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        default_helpers=False,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.filters["short"] = short_time
    env.filters["fid"] = dom_id
    env.filters["eid"] = lambda path: "err-" + dom_id(path)[2:]
    env.filters["dur"] = duration_text
    env.globals["week_bars"] = week_bars


def local_time(value: datetime | None, zone: tzinfo | None = None) -> str:
    """`Mon 05 Jan 2026, 09:00` in `zone` (the number's), or an em dash."""
    if value is None:
        return "—"
    if zone is not None:
        value = value.astimezone(zone)
    return value.strftime("%a %d %b %Y, %H:%M")


def short_time(value: datetime | None, zone: tzinfo | None = None) -> str:
    """`05 Jan 09:00` in `zone`, or an em dash."""
    if value is None:
        return "—"
    if zone is not None:
        value = value.astimezone(zone)
    return value.strftime("%d %b %H:%M")


def duration_text(value: Any) -> str:
    """A monitoring `Duration` (or seconds) as `45 s`, `12 min`, `1 h 05 min`; an em dash for
    none."""
    if value is None:
        return "—"
    seconds = round(float(getattr(value, "seconds", value)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def static_url(request: web.Request, filename: str) -> str:
    """The URL of a static file, with a content hash so browsers may cache it forever."""
    return str(request.app.router[STATIC_ROUTE].url_for(filename=filename))


def _base(request: web.Request) -> dict[str, Any]:
    user = maybe_user(request)
    return {
        "user": user,
        "csrf": user.csrf if user is not None else "",
        "static": lambda filename: static_url(request, filename),
        "numbers": [],
        "number": None,
        "section": "",
        "path": request.path,
        "oob": False,
        "monitoring": False,
    }


async def visible_numbers(request: web.Request) -> list[StoredNumber]:
    """The served numbers the signed-in user is attached to (admins: all), by id."""
    caller = user_of(request).caller
    store = request.app[stores_key].numbers
    served = await store.ids()
    ids = served if caller.is_admin else [n for n in served if n in caller.numbers]
    return await store.get_many(ids)


async def render_page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    """A whole page: the header's number picker and navigation, then `template`'s content."""
    base = _base(request)
    user = base["user"]
    if user is not None:
        base["numbers"] = await visible_numbers(request)
        number = context.get("number")
        if isinstance(number, StoredNumber):
            base["monitoring"] = can_monitor(user.caller, number.phone_number_id)
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def render_fragment(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """One part of a page, for htmx to swap in."""
    return aiohttp_jinja2.render_template(
        template, request, {**_base(request), **context}, status=status
    )


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """An error as HTML: a whole page, or for htmx a line the page shows in its status area."""
    if request.headers.get("HX-Request") == "true":
        return web.Response(status=status, text=message, content_type="text/plain")
    return aiohttp_jinja2.render_template(
        "error.html", request, {**_base(request), "status": status, "message": message},
        status=status,
    )  # fmt: skip
