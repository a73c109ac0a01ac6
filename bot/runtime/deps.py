"""`Deps`: what the composition root (bot/deps.py `open_deps`) hands to jobs, services and
handlers (`bot.appkeys.deps_key`); one frozen bundle, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from arq.connections import ArqRedis

from bot.domain.clock import Clock
from bot.runtime.outbox import GraphOutbox, Outbox
from bot.runtime.queue import Intake
from bot.settings import Settings
from storage import Stores


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    redis: ArqRedis
    http: aiohttp.ClientSession
    outbox: Outbox
    stores: Stores
    intake: Intake
    clock: Clock
    # Graph reads made while somebody waits (the WABA's templates); None without an access
    # token. Not the outbox: fewer attempts, since a person is waiting for the answer.
    graph: GraphOutbox | None = None
