"""The shape of one `/api/v1` operation's declaration (`Operation`), from which both the router
(`handlers.api.setup_api`) and the OpenAPI document (`handlers.api.openapi`) are built.

The declarations themselves are the table in `handlers.api.operations`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from handlers.api.auth import API_PREFIX

Method = Literal["GET", "PUT", "PATCH", "POST", "DELETE"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A model (JSON), "merge-patch" for the NumberConfig merge patch, "csv" for a text/csv upload.
Body = type[BaseModel] | Literal["merge-patch", "csv"] | None


@dataclass(frozen=True, slots=True, eq=False)
class PathParam:
    """What a `{name}` placeholder of a path accepts (the handler checks it: `path_id`)."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""


# eq=False (here and on PathParam): declarations compare and hash by identity, so that a tuple
# of them can key a cache (the document is built once per distinct table).
@dataclass(frozen=True, slots=True, eq=False)
class Operation:
    """One HTTP operation under `API_PREFIX`: what the router registers and the document shows.

    Attributes:
        method, path: `path` below `API_PREFIX`, with aiohttp's `{name}` placeholders.
        handler: the aiohttp handler.
        operation_id, summary, tag, description: the document's words.
        who: who may call it (checked by the handler through `bot.domain.auth`; stated here).
        query: the model the handler reads its query string with (`handlers.api.queries`).
        body: what the request carries (see `Body`).
        responses: status -> response model (None: no JSON body).
        path_params: placeholders whose schema differs from `operations.PATH_PARAMS`' default.
        query_token: the bearer token may also come as `?token=` (browsers' EventSource
            cannot send headers); registration marks the handler for `authenticate`.
    """

    method: Method
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    who: str
    query: type[BaseModel] | None = None
    body: Body = None
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    path_params: Sequence[PathParam] = ()
    query_token: bool = False
    description: str = ""

    @property
    def url(self) -> str:
        """The route's full path pattern, as the router holds it."""
        return API_PREFIX + self.path
