"""Storage: every Redis read and write. `Stores` groups the repositories of one Redis client."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from storage.after_hours import AfterHoursStore
from storage.agents import AgentsStore
from storage.audit import AuditStore
from storage.console_sessions import ConsoleSessionsStore
from storage.contacts import ContactsStore
from storage.dead_letters import DeadLettersStore
from storage.events import EventsStore
from storage.locks import ContactLocks
from storage.messages import MessagesStore
from storage.monitoring import MonitoringStore
from storage.notes import NotesStore
from storage.numbers import NumbersStore
from storage.outgoing import OutgoingStore
from storage.quick_replies import QuickRepliesStore
from storage.ratelimit import RateLimiter
from storage.receipts import ReceiptsStore
from storage.sandbox import SandboxStore
from storage.sends import SendsStore
from storage.stats import StatsStore
from storage.templates import TemplatesStore
from storage.throttle import ThrottleStore
from storage.tickets import TicketsStore
from storage.timeline import TimelineStore
from storage.transfer_requests import TransferRequestsStore


@dataclass(frozen=True, slots=True)
class Stores:
    """One repository per aggregate, all on the same Redis client."""

    stats: StatsStore
    dead_letters: DeadLettersStore
    messages: MessagesStore
    contacts: ContactsStore
    timeline: TimelineStore
    outgoing: OutgoingStore
    locks: ContactLocks
    sandbox: SandboxStore
    sends: SendsStore
    rates: RateLimiter
    console_sessions: ConsoleSessionsStore
    throttle: ThrottleStore
    numbers: NumbersStore
    agents: AgentsStore
    audit: AuditStore
    quick_replies: QuickRepliesStore
    after_hours: AfterHoursStore
    templates: TemplatesStore
    events: EventsStore
    tickets: TicketsStore
    monitoring: MonitoringStore
    notes: NotesStore
    transfer_requests: TransferRequestsStore
    receipts: ReceiptsStore

    @classmethod
    def on(cls, redis: Redis) -> Stores:
        return cls(
            stats=StatsStore(redis),
            dead_letters=DeadLettersStore(redis),
            messages=MessagesStore(redis),
            contacts=ContactsStore(redis),
            timeline=TimelineStore(redis),
            outgoing=OutgoingStore(redis),
            locks=ContactLocks(redis),
            sandbox=SandboxStore(redis),
            sends=SendsStore(redis),
            rates=RateLimiter(redis),
            console_sessions=ConsoleSessionsStore(redis),
            throttle=ThrottleStore(redis),
            numbers=NumbersStore(redis),
            agents=AgentsStore(redis),
            audit=AuditStore(redis),
            quick_replies=QuickRepliesStore(redis),
            after_hours=AfterHoursStore(redis),
            templates=TemplatesStore(redis),
            events=EventsStore(redis),
            tickets=TicketsStore(redis),
            monitoring=MonitoringStore(redis),
            notes=NotesStore(redis),
            transfer_requests=TransferRequestsStore(redis),
            receipts=ReceiptsStore(redis),
        )
