"""After-hours contacts: the 7-day list per number, callback records, active-message bookkeeping.

One row per contact per closed period (`period`, from bot.domain.decide: the ISO instant of the next
opening, or "never"). Its id is derived from (number, contact, period), so every message of
that period lands on the same row without an index lookup, and the id says nothing about the
contact. Rows vanish on their own 7 days after the period's first message: the row's TTL ends
there, and the number's index is filtered by score on every read (a purge on write only
reclaims memory). Every write is one Lua script, so a row is never half-written and a message
redelivered (same wamid) is counted once.

The callback lives in its own record rather than in the row, so that a callback due after the
row expired (a long closure) still knows whom to call back; the row mirrors its status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool
from redis.asyncio import Redis

from storage import keys, lua

RequestedReturn = Literal["yes", "no", "N/D"]
REQUESTED_RETURNS: Final[tuple[RequestedReturn, ...]] = ("yes", "no", "N/D")
NO_NAME: Final = "(No name)"
KEEP_MS: Final = keys.AFTER_HOURS_KEEP_S * 1000
ROW_ID_PATTERN: Final = r"^[0-9a-f]{20}$"
# Meta: template names are lowercase letters, digits and underscores (at most 512).
TEMPLATE_NAME_PATTERN: Final = r"^[a-z0-9_]{1,512}$"
# Meta's language codes: "en", "pt_BR", "zh_HK", "es_AR"...
LANGUAGE_PATTERN: Final = r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$"

_REQUESTED: Final[dict[str, RequestedReturn]] = {r: r for r in REQUESTED_RETURNS}

CallbackStatus = Literal["pending", "opened"]
SendStatus = Literal["queued", "sent", "failed"]


def row_id(phone_number_id: str, contact: str, period: str) -> str:
    """The opaque, stable id of a contact's row for one closed period."""
    digest = hashlib.sha256(f"{phone_number_id}\n{contact}\n{period}".encode())
    return digest.hexdigest()[:20]


def callback_key(phone_number_id: str, contact: str, period: str) -> str:
    """The natural key of a callback ticket: one per contact and closed period."""
    return f"callback:{phone_number_id}:{contact}:{period}"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int | float, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


# --- read models (the API answers these) --------------------------------------------------


class ActiveMessageView(BaseModel):
    """The last active message sent to the row's contact from this row."""

    model_config = ConfigDict(frozen=True)

    template: str
    language: str
    queued_at: AwareDatetime
    by: str | None
    status: SendStatus = Field(
        description="queued until Meta accepted it (sent) or refused it for good (failed)"
    )


class AfterHoursContact(BaseModel):
    """One row of `GET /api/v1/numbers/{id}/after-hours-contacts`."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="opaque")
    contacted_at: AwareDatetime = Field(
        description="the contact's first message of the closed period, in the number's offset"
    )
    name: str = Field(description=f'"{NO_NAME}" when WhatsApp gave none')
    phone: str | None = Field(description="E.164 with '+' (null for a username-only contact)")
    wa_id: str | None
    requested_return: RequestedReturn = Field(
        description='"yes": tapped "notify me"; "no": was offered it; "N/D": the option was off'
    )
    message_sent: bool = Field(description="an active message was queued for this contact")
    last_message_at: AwareDatetime
    messages: int = Field(description="messages of this contact in this closed period")
    next_opening: AwareDatetime | None = Field(description="when the closed period ends")
    callback_status: Literal["scheduled", "opened"] | None = None
    callback_at: AwareDatetime | None = Field(
        None, description="when the callback ticket opens (or opened)"
    )
    ticket_id: str | None = Field(None, description="the callback ticket, once known")
    active_message: ActiveMessageView | None = None


class AfterHoursPage(BaseModel):
    items: list[AfterHoursContact]


class ActiveMessageInput(BaseModel):
    """`POST .../after-hours-contacts/{id}/active-message`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str = Field(pattern=TEMPLATE_NAME_PATTERN, description="the template's name")
    language: str = Field(pattern=LANGUAGE_PATTERN, description="Meta's code, e.g. pt_BR")
    variables: list[str] = Field(
        default_factory=list, max_length=100, description="the body's {{1}}, {{2}}... in order"
    )
    force: StrictBool = Field(False, description="send even if sent within 24 hours")


# --- stored records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """A stored row, as the store reads it (times in epoch ms)."""

    id: str
    contact: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    phone: str | None
    period: str
    next_opening: datetime | None
    first_ms: int
    last_ms: int
    messages: int
    requested_return: RequestedReturn
    message_sent: bool
    callback: Literal["scheduled", "opened"] | None
    callback_ms: int | None
    ticket_id: str | None
    active: dict[str, Any] | None
    # The outcome of the active message's send (SendsStore's done-marker), when read with it.
    active_outcome: str | None = None

    def callback_key(self, phone_number_id: str) -> str:
        """The natural key of this row's callback ticket (see `Callback.natural_key`)."""
        return callback_key(phone_number_id, self.contact, self.period)

    def view(self, zone: tzinfo) -> AfterHoursContact:
        """The API item, with times in `zone` (the number's)."""
        active = None
        if self.active is not None:
            outcome = self.active_outcome
            status: SendStatus = (
                "queued"
                if outcome is None
                else "failed"
                if outcome.startswith("failed")
                else "sent"
            )
            active = ActiveMessageView(
                template=self.active["template"],
                language=self.active["language"],
                queued_at=_at(self.active["at_ms"], zone),
                by=self.active.get("by"),
                status=status,
            )
        return AfterHoursContact(
            id=self.id,
            contacted_at=_at(self.first_ms, zone),
            name=self.name or NO_NAME,
            phone=self.phone,
            wa_id=self.wa_id,
            requested_return=self.requested_return,
            message_sent=self.message_sent,
            last_message_at=_at(self.last_ms, zone),
            messages=self.messages,
            next_opening=None if self.next_opening is None else self.next_opening.astimezone(zone),
            callback_status=self.callback,
            callback_at=None if self.callback_ms is None else _at(self.callback_ms, zone),
            ticket_id=self.ticket_id,
            active_message=active,
        )


@dataclass(frozen=True, slots=True)
class Callback:
    """A callback a contact asked for: open a "callback" ticket at the number's next opening."""

    phone_number_id: str
    row_id: str
    status: CallbackStatus
    contact: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    period: str
    due: datetime | None
    ticket_id: str | None

    @property
    def natural_key(self) -> str:
        """The callback ticket's idempotency key (one ticket per contact and closed period)."""
        return callback_key(self.phone_number_id, self.contact, self.period)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record_contact` did: `stored` False when the message is too old to list."""

    stored: bool
    created: bool
    new_message: bool
    announced: bool


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """Who wrote: the fields a row (and a callback) keeps about its contact."""

    contact: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    phone: str | None


# --- scripts ------------------------------------------------------------------------------


class AfterHoursStore:
    """Rows, callbacks and active-message marks of the after-hours list."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = lua.register(redis, "after_hours_record")
        self._callback = lua.register(redis, "after_hours_callback")
        self._due = lua.register(redis, "after_hours_due")
        self._opened = lua.register(redis, "after_hours_opened")
        self._set_if_row = lua.register(redis, "after_hours_set_if_row")
        self._release = lua.register(redis, "compare_and_delete")

    # --- rows -----------------------------------------------------------------------------

    async def record_contact(
        self,
        phone_number_id: str,
        rid: str,
        who: ContactInfo,
        *,
        wamid: str,
        at: datetime,
        now: datetime,
        period: str,
        next_opening: datetime | None,
        requested_return: RequestedReturn,
    ) -> Recorded:
        """Add or update the row `rid` for the message `wamid` written at `at`.

        Idempotent on `wamid`: a redelivered message is not counted again. A message whose row
        would already be older than 7 days at `now` stores nothing (`stored` False).
        """
        result = await self._record(
            keys=[
                keys.after_hours_row(phone_number_id, rid),
                keys.after_hours_seen(phone_number_id, rid),
                keys.after_hours_rows(phone_number_id),
            ],
            args=[
                wamid,
                _ms(at),
                _ms(now),
                KEEP_MS,
                rid,
                requested_return,
                who.contact,
                who.wa_id or "",
                who.user_id or "",
                who.name or "",
                who.phone or "",
                period,
                "" if next_opening is None else next_opening.isoformat(),
            ],
        )
        stored, created, fresh, announced = (int(x) for x in result)
        return Recorded(bool(stored), bool(created), bool(fresh), bool(announced))

    async def mark_announced(self, phone_number_id: str, rid: str) -> None:
        """Remember that `after_hours.contact` went out for this row (published first)."""
        await self._set_if_row(
            keys=[keys.after_hours_row(phone_number_id, rid)], args=["announced", "1"]
        )

    async def get(self, phone_number_id: str, rid: str, now: datetime) -> Row | None:
        """The row, or None when there is none listed at `now` (expired, or older than 7 days)."""
        raw = await self._redis.hgetall(keys.after_hours_row(phone_number_id, rid))
        row = _row(rid, raw)
        if row is None or row.first_ms + KEEP_MS <= _ms(now):
            return None
        return (await self._enrich(phone_number_id, [row]))[0]

    async def rows(self, phone_number_id: str, now: datetime) -> list[Row]:
        """The number's rows of the last 7 days before `now`, newest contact first."""
        index = keys.after_hours_rows(phone_number_id)
        ids = [
            _text(m)
            for m in await self._redis.zrevrangebyscore(index, "+inf", f"({_ms(now) - KEEP_MS}")
        ]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for rid in ids:
                pipe.hgetall(keys.after_hours_row(phone_number_id, rid))
            raws = await pipe.execute()
        rows = [r for r in (_row(rid, raw) for rid, raw in zip(ids, raws, strict=True)) if r]
        return await self._enrich(phone_number_id, rows)

    async def _enrich(self, phone_number_id: str, rows: list[Row]) -> list[Row]:
        """Fill what other aggregates know, in one MGET: whether Meta accepted the active
        message (the send's done-marker, storage/sends.py) and the callback ticket's id (the
        ticket request's marker, storage/tickets.py; the ticket opens in its own job)."""
        wanted: list[tuple[int, str, str]] = []
        for i, r in enumerate(rows):
            if r.active is not None:
                wanted.append((i, "active_outcome", keys.send_done(str(r.active["natural_key"]))))
            if r.callback == "opened" and r.ticket_id is None:
                key = keys.ticket_request(phone_number_id, r.callback_key(phone_number_id))
                wanted.append((i, "ticket_id", key))
        if not wanted:
            return rows
        values = await self._redis.mget([key for _, _, key in wanted])
        changes: dict[int, dict[str, str | None]] = {}
        for (i, field, _), value in zip(wanted, values, strict=True):
            changes.setdefault(i, {})[field] = _text(value) or None
        return [replace(r, **changes[i]) if i in changes else r for i, r in enumerate(rows)]  # type: ignore[arg-type]

    # --- active messages ------------------------------------------------------------------

    async def claim_active_message(
        self, phone_number_id: str, contact: str, template: str, natural_key: str, *, force: bool
    ) -> bool:
        """Reserve sending `template` to `contact` for 24 hours (SET NX; SET when `force`).

        Returns False when the template already went to this contact within 24 hours and
        `force` is off: the caller answers 409 and sends nothing.
        """
        ok = await self._redis.set(
            keys.active_message_sent(phone_number_id, contact, template),
            natural_key,
            nx=not force,
            ex=keys.ACTIVE_MESSAGE_REPEAT_S,
        )
        return bool(ok)

    async def release_active_message(
        self, phone_number_id: str, contact: str, template: str, natural_key: str
    ) -> None:
        """Undo `claim_active_message` (only our own claim) when the send could not be queued."""
        await self._release(
            keys=[keys.active_message_sent(phone_number_id, contact, template)],
            args=[natural_key],
        )

    async def mark_message_sent(
        self,
        phone_number_id: str,
        rid: str,
        *,
        template: str,
        language: str,
        natural_key: str,
        at: datetime,
        by: str | None,
    ) -> bool:
        """Flip `message_sent` and remember the send (idempotent; False if the row is gone)."""
        active = {
            "template": template,
            "language": language,
            "natural_key": natural_key,
            "at_ms": _ms(at),
            "by": by,
        }
        done = await self._set_if_row(
            keys=[keys.after_hours_row(phone_number_id, rid)],
            args=["message_sent", "1", "active", json.dumps(active, separators=(",", ":"))],
        )
        return bool(done)

    # --- callbacks ------------------------------------------------------------------------

    async def request_callback(
        self,
        phone_number_id: str,
        rid: str,
        who: ContactInfo,
        *,
        period: str,
        due: datetime | None,
        now: datetime,
    ) -> bool:
        """Create the pending callback of row `rid` due at `due` (None: no opening in sight).

        Idempotent on (number, row): returns False, changing nothing, when it exists already.
        """
        created = await self._callback(
            keys=self._callback_keys(phone_number_id, rid),
            args=[
                rid,
                "" if due is None else _ms(due),
                self._callback_ttl_ms(due, now),
                keys.CALLBACK_UNSCHEDULED_TTL_S * 1000,
                who.contact,
                who.wa_id or "",
                who.user_id or "",
                who.name or "",
                period,
            ],
        )
        return bool(created)

    async def callback(self, phone_number_id: str, rid: str) -> Callback | None:
        raw = await self._redis.hgetall(keys.after_hours_callback(phone_number_id, rid))
        if not raw:
            return None
        f = {_text(k): _text(v) for k, v in raw.items()}
        status: CallbackStatus = "opened" if f.get("status") == "opened" else "pending"
        due = f.get("due_ms", "")
        return Callback(
            phone_number_id=phone_number_id,
            row_id=rid,
            status=status,
            contact=f.get("contact", ""),
            wa_id=f.get("wa_id") or None,
            user_id=f.get("user_id") or None,
            name=f.get("name") or None,
            period=f.get("period", ""),
            due=_at(int(due), UTC) if due else None,
            ticket_id=f.get("ticket_id") or None,
        )

    async def pending_callbacks(self, phone_number_id: str) -> list[str]:
        """Row ids of the number's pending callbacks, soonest first (unscheduled last)."""
        members = await self._redis.zrange(keys.after_hours_callbacks(phone_number_id), 0, -1)
        return [_text(m) for m in members]

    async def has_pending_callbacks(self, phone_number_id: str) -> bool:
        return bool(await self._redis.zcard(keys.after_hours_callbacks(phone_number_id)))

    async def set_callback_due(
        self, phone_number_id: str, rid: str, due: datetime | None, now: datetime
    ) -> bool:
        """Move a pending callback to `due`; False when it is not pending (opened, or gone)."""
        moved = await self._due(
            keys=self._callback_keys(phone_number_id, rid),
            args=[rid, "" if due is None else _ms(due), self._callback_ttl_ms(due, now)],
        )
        return bool(moved)

    async def mark_callback_opened(
        self, phone_number_id: str, rid: str, *, at: datetime, ticket_id: str | None
    ) -> bool:
        """pending -> opened. True only for the call that made the transition (exactly once)."""
        done = await self._opened(
            keys=self._callback_keys(phone_number_id, rid),
            args=[rid, _ms(at), keys.CALLBACK_KEEP_S * 1000, ticket_id or ""],
        )
        return bool(done)

    async def set_ticket_id(self, phone_number_id: str, rid: str, ticket_id: str) -> None:
        """Record the callback ticket's id, once known, on the callback and its row."""
        await self._set_if_row(
            keys=[keys.after_hours_callback(phone_number_id, rid)], args=["ticket_id", ticket_id]
        )
        await self._set_if_row(
            keys=[keys.after_hours_row(phone_number_id, rid)], args=["ticket_id", ticket_id]
        )

    @staticmethod
    def _callback_keys(phone_number_id: str, rid: str) -> list[str]:
        return [
            keys.after_hours_callback(phone_number_id, rid),
            keys.after_hours_callbacks(phone_number_id),
            keys.after_hours_row(phone_number_id, rid),
        ]

    @staticmethod
    def _callback_ttl_ms(due: datetime | None, now: datetime) -> int:
        if due is None:
            return keys.CALLBACK_UNSCHEDULED_TTL_S * 1000
        return max(0, _ms(due) - _ms(now)) + keys.CALLBACK_KEEP_S * 1000


def _row(rid: str, raw: dict[bytes, bytes]) -> Row | None:
    if not raw or b"first_ms" not in raw:
        return None
    f = {_text(k): _text(v) for k, v in raw.items()}
    requested = f.get("requested_return", "N/D")
    callback = f.get("callback") or None
    callback_ms = f.get("callback_ms") or None
    next_opening = f.get("next_opening") or None
    return Row(
        id=rid,
        contact=f.get("contact", ""),
        wa_id=f.get("wa_id") or None,
        user_id=f.get("user_id") or None,
        name=f.get("name") or None,
        phone=f.get("phone") or None,
        period=f.get("period", ""),
        next_opening=None if next_opening is None else datetime.fromisoformat(next_opening),
        first_ms=int(f["first_ms"]),
        last_ms=int(f.get("last_ms", f["first_ms"])),
        messages=int(f.get("messages", "0")),
        requested_return=_REQUESTED.get(requested, "N/D"),
        message_sent=f.get("message_sent") == "1",
        callback="opened" if callback == "opened" else "scheduled" if callback else None,
        callback_ms=None if callback_ms is None else int(callback_ms),
        ticket_id=f.get("ticket_id") or None,
        active=json.loads(f["active"]) if f.get("active") else None,
    )
