"""Storage: every Redis read and write. `Stores` groups the repositories of one Redis client."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from storage.agents import AgentsStore
from storage.audit import AuditStore
from storage.contacts import ContactsStore
from storage.locks import ContactLocks
from storage.messages import MessagesStore
from storage.numbers import NumbersStore
from storage.outgoing import OutgoingStore
from storage.ratelimit import RateLimiter
from storage.sandbox import SandboxStore
from storage.sends import SendsStore
from storage.stats import StatsStore
from storage.throttle import ThrottleStore
from storage.timeline import TimelineStore


@dataclass(frozen=True, slots=True)
class Stores:
    """One repository per aggregate, all on the same Redis client."""

    stats: StatsStore
    messages: MessagesStore
    contacts: ContactsStore
    timeline: TimelineStore
    outgoing: OutgoingStore
    locks: ContactLocks
    sandbox: SandboxStore
    sends: SendsStore
    rates: RateLimiter
    throttle: ThrottleStore
    numbers: NumbersStore
    agents: AgentsStore
    audit: AuditStore

    @classmethod
    def on(cls, redis: Redis) -> Stores:
        return cls(
            stats=StatsStore(redis),
            messages=MessagesStore(redis),
            contacts=ContactsStore(redis),
            timeline=TimelineStore(redis),
            outgoing=OutgoingStore(redis),
            locks=ContactLocks(redis),
            sandbox=SandboxStore(redis),
            sends=SendsStore(redis),
            rates=RateLimiter(redis),
            throttle=ThrottleStore(redis),
            numbers=NumbersStore(redis),
            agents=AgentsStore(redis),
            audit=AuditStore(redis),
        )
