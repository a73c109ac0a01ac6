"""The web application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.appkeys import clock_key, deps_key, intake_key, queue_key, settings_key, stores_key
from bot.deps import open_deps
from bot.domain.clock import Clock
from bot.runtime.transcript_pool import transcripts_ctx
from bot.settings import Settings
from handlers import setup_routes
from handlers.middlewares import errors, nosniff, observe
from handlers.webhook import install_read_slots


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the aiohttp app; dependencies open in its cleanup context and close with it."""
    # aiohttp answers 413 past client_max_size; its 1 MiB default is below what Meta sends.
    # read_bufsize: what aiohttp buffers per connection before it stops reading the socket
    # (twice this); 64 KiB instead of 256 KiB took 50 MB off a flood of 120 unsigned 4 MiB
    # bodies (tests/security/test_webhook_flood.py).
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[observe, errors],
        handler_args={"read_bufsize": 64 * 1024},
    )
    app[settings_key] = settings
    install_read_slots(app, settings)
    app.on_response_prepare.append(nosniff)

    async def deps_ctx(app: web.Application) -> AsyncIterator[None]:
        # A plain async generator: works with aiohttp 3.13's cleanup_ctx as well as 3.14's.
        async with open_deps(settings, clock=clock) as deps:
            app[deps_key] = deps
            app[queue_key] = deps.redis
            app[intake_key] = deps.intake
            app[stores_key] = deps.stores
            app[clock_key] = deps.clock
            yield

    app.cleanup_ctx.append(deps_ctx)
    app.cleanup_ctx.append(transcripts_ctx(settings))  # PDF render workers, started lazily
    setup_routes(app)
    return app
