"""Storage: every Redis read and write. `Stores` groups the repositories of one Redis client."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from storage.messages import MessagesStore
from storage.sandbox import SandboxStore
from storage.stats import StatsStore


@dataclass(frozen=True, slots=True)
class Stores:
    """One repository per aggregate, all on the same Redis client."""

    stats: StatsStore
    messages: MessagesStore
    sandbox: SandboxStore

    @classmethod
    def on(cls, redis: Redis) -> Stores:
        return cls(
            stats=StatsStore(redis), messages=MessagesStore(redis), sandbox=SandboxStore(redis)
        )
