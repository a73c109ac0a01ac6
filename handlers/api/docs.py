"""`GET /api/v1/openapi.json`: the OpenAPI document, public (it describes, it holds no data)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

# The document of the operations this app serves, as JSON text: `setup_api` builds it from the
# same table it registers the routes from. Local to the API (nothing else reads it), so it is
# kept here rather than in bot/appkeys.py.
openapi_key: Final = web.AppKey("deskline.openapi", str)


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the operations this app serves."""
    return web.Response(text=request.app[openapi_key], content_type="application/json")
