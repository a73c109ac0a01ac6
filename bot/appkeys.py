"""aiohttp AppKeys: the typed names of what the application shares with its handlers."""

from __future__ import annotations

from aiohttp import web
from arq.connections import ArqRedis

from bot.domain.clock import Clock
from bot.runtime.deps import Deps
from bot.runtime.queue import Intake
from bot.settings import Settings
from storage import Stores

settings_key = web.AppKey("deskline.settings", Settings)
# Everything the services need (bot.services take it, with plain values).
deps_key = web.AppKey("deskline.deps", Deps)
# The Redis connection the webhook enqueues on (the same pool that serves arq).
queue_key = web.AppKey("deskline.queue", ArqRedis)
# Claims and enqueues webhook items in one round trip.
intake_key = web.AppKey("deskline.intake", Intake)
# Read and write models for the HTTP API (never used by the webhook handler).
stores_key = web.AppKey("deskline.stores", Stores)
clock_key = web.AppKey("deskline.clock", Clock)
