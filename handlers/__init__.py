"""aiohttp request handlers: thin, no business logic."""

from __future__ import annotations

from aiohttp import web

from handlers import health, webhook
from handlers.api import setup_api
from handlers.console import setup_console


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/webhook", webhook.verify_subscription)
    app.router.add_post("/webhook", webhook.receive)
    setup_api(app)
    setup_console(app)
