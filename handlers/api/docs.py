"""`GET /api/v1/openapi.json`: the OpenAPI document, public (it describes, it holds no data)."""

from __future__ import annotations

import json
from functools import cache

from aiohttp import web

from bot.openapi import openapi_document


@cache
def _body() -> str:
    # Built once per process: the document depends only on the code.
    return json.dumps(openapi_document(), separators=(",", ":"))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_body(), content_type="application/json")
