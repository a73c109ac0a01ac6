"""The HTTP API under `/api/v1`: route setup and the JSON plumbing its handlers share.

To add an endpoint: write the handler (read the caller with `handlers.api.auth.caller_of`, the
query string with `handlers.api.queries.read_query`) and add its `Operation` to
`handlers.api.operations.OPERATIONS`: that one entry gives both its route and its part of the
OpenAPI document. Authentication needs nothing more: the middleware guards every /api/v1 path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from bot.domain.config import is_valid_id
from bot.domain.errors import BadRequestError, InvalidInputError

if TYPE_CHECKING:
    from handlers.api.spec import Handler, Operation

# No API body nests deeper than a few levels; a deeper one would only exercise recursion
# limits (json.loads and the merge patch are recursive), so it is refused up front.
MAX_DEPTH = 32


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    return "a number has too many digits" if "digits" in str(exc) else "unreadable"


async def read_json(request: web.Request) -> Any:
    """The request body parsed as JSON; 400 when it is not JSON or absurdly nested."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequestError(f"the body nests deeper than {MAX_DEPTH} levels", "body") from None
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is the refusal to convert
        # an integer of more than 4,300 digits (Python's int limit), which would be a 500.
        raise BadRequestError(f"the body is not valid JSON: {_reason(exc)}", "body") from None
    if _too_deep(body):
        raise BadRequestError(f"the body nests deeper than {MAX_DEPTH} levels", "body")
    return body


def path_id(request: web.Request, name: str) -> str:
    """A path parameter that must be an id (phone_number_id, agent_id): 422 naming it if not."""
    value = request.match_info[name]
    if not is_valid_id(value):
        raise InvalidInputError(f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . -", name)
    return value


def model_response(model: BaseModel, status: int = 200) -> web.Response:
    """A pydantic model as a JSON answer (datetimes in ISO 8601 with their offset)."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def setup_api(app: web.Application, operations: Sequence[Operation] | None = None) -> None:
    """Register one route per operation (default: `handlers.api.operations.OPERATIONS`), the
    OpenAPI document of the same operations, and the authentication middleware on `app`.

    Called from `handlers.setup_routes`, before the app is frozen. Tests pass a subset of the
    table to see that an operation left out is neither routed nor documented.

    Raises:
        LookupError: an operation's path placeholder has no `PathParam`.
    """
    # Imported here: the route modules import the helpers above from this package.
    from handlers.api import docs, events
    from handlers.api.auth import authenticate
    from handlers.api.openapi import openapi_document
    from handlers.api.operations import OPERATIONS, PATH_PARAMS

    ops = OPERATIONS if operations is None else tuple(operations)
    # Appended last, so it runs inside `observe` and `errors`: its 503s and logs are theirs.
    app.middlewares.append(authenticate)
    events.setup_events(app)
    app[docs.openapi_key] = json.dumps(openapi_document(ops, PATH_PARAMS), separators=(",", ":"))
    # One resource per path, its methods together (aiohttp merges a route into the resource
    # added last only), so the router lists each path once, as the document does.
    resources: dict[str, web.Resource] = {}
    for op in ops:
        if op.url not in resources:
            resources[op.url] = app.router.add_resource(op.url)
        resource = resources[op.url]
        handler = _with_query_token(op.handler) if op.query_token else op.handler
        if op.method == "GET":
            resource.add_route("HEAD", handler)  # as router.add_get does
        resource.add_route(op.method, handler)


def _with_query_token(handler: Handler) -> Handler:
    """`handler` in a wrapper that `authenticate` lets also authenticate by `?token=`: a
    wrapper per app, so that the table, not a decorator, decides (and tests' apps differ)."""
    from handlers.api.auth import accepts_query_token

    async def wrapper(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return accepts_query_token(functools.update_wrapper(wrapper, handler))
