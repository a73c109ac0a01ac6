"""The web application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.clock import Clock
from bot.deps import open_deps
from bot.keys import clock_key, intake_key, queue_key, settings_key, stores_key
from bot.settings import Settings
from handlers import setup_routes
from handlers.middlewares import errors, observe


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the aiohttp app; dependencies open in its cleanup context and close with it."""
    # aiohttp answers 413 past client_max_size; its 1 MiB default is below what Meta sends.
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[observe, errors])
    app[settings_key] = settings

    async def deps_ctx(app: web.Application) -> AsyncIterator[None]:
        # A plain async generator: works with aiohttp 3.13's cleanup_ctx as well as 3.14's.
        async with open_deps(settings, clock=clock) as deps:
            app[queue_key] = deps.redis
            app[intake_key] = deps.intake
            app[stores_key] = deps.stores
            app[clock_key] = deps.clock
            yield

    app.cleanup_ctx.append(deps_ctx)
    setup_routes(app)
    return app
