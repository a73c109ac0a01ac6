"""The signed-in user of a console request, and what the request asks for (page or fragment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web

from bot.domain.auth import Caller
from bot.domain.config import AgentRecord
from bot.domain.sessions import ConsoleSession

# web.RequestKey appeared in aiohttp 3.14 (see handlers.api.auth).
_USER: Final[Any] = (
    web.RequestKey("deskline.console_user", object)
    if hasattr(web, "RequestKey")
    else "deskline.console_user"
)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The signed-in user of one console request: the same `Caller` the API would see."""

    caller: Caller
    session: ConsoleSession
    agent: AgentRecord | None

    @property
    def name(self) -> str:
        return self.agent.name if self.agent is not None else "Administrator"

    @property
    def csrf(self) -> str:
        return self.session.csrf


def set_user(request: web.Request, user: ConsoleUser) -> None:
    request[_USER] = user


def user_of(request: web.Request) -> ConsoleUser:
    """The signed-in user (set by `handlers.console.session.console_auth`)."""
    return cast(ConsoleUser, request[_USER])


def maybe_user(request: web.Request) -> ConsoleUser | None:
    """The signed-in user, or None on public pages (sign-in, errors before sign-in)."""
    return cast(ConsoleUser | None, request.get(_USER))


def is_htmx(request: web.Request) -> bool:
    """An htmx request wants the fragment it targets, not a whole page."""
    return request.headers.get("HX-Request") == "true"
