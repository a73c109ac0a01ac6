"""aiohttp request handlers: thin, no business logic."""

from __future__ import annotations

from aiohttp import web

from handlers import health, webhook
from handlers.api import setup_api
from handlers.console import setup_console


async def root(_request: web.Request) -> web.StreamResponse:
    """`GET /`: the console's address (a person who opens the bare URL wants the desk, not a
    JSON 404). Holds no data, so it needs no session; the console asks for one."""
    raise web.HTTPFound("/console")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/webhook", webhook.verify_subscription)
    app.router.add_post("/webhook", webhook.receive)
    setup_api(app)
    setup_console(app)
