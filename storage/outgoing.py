"""Outgoing messages: what deskline sent, and each one's delivery state from status webhooks.

The delivery state is a one-way machine (WHATSAPP.md section 5):

    accepted -> sent -> delivered -> read -> played       failed (final)

- A status moves the state only forward; late or repeated statuses never move it back (Meta
  does not guarantee their order).
- `read` (or `played`) implies delivered: `delivered_at` takes the read time when `delivered`
  never came (Meta skips it when both happen together); a real `delivered` arriving later
  with an earlier time corrects it.
- `failed` applies while the message is not yet known delivered, and is final: nothing moves
  it afterwards. Its error codes are kept. A `failed` after `delivered` contradicts what Meta
  already told us and is ignored.
- Each status records its time (`sent_at`, `delivered_at`, ...) even when it arrives late;
  a repeated status keeps the earliest time reported.
- A status for an id we have no record of (the status webhook can beat the reply job's
  `record_sent`, or the message was sent by another tool on the same number) is *kept*: it
  creates a pending record (TTL OUTGOING_PENDING_TTL_S) on which `record_sent` later lands,
  so the state it reached is not lost. `get` hides pending records unless asked.

Every transition is one Lua script, hence atomic across worker processes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Literal, cast

from redis.asyncio import Redis

from bot.domain.models import MetaError, OutgoingMessage, StatusUpdate
from storage import keys, lua

ApplyResult = Literal["applied", "unchanged", "pending", "ignored"]

_TIMES: Final = ("accepted_at", "sent_at", "delivered_at", "read_at", "played_at", "failed_at")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _message(message_id: str, raw: Mapping[str, str]) -> OutgoingMessage:
    times = {f: datetime.fromtimestamp(int(raw[f]) / 1000, tz=UTC) for f in _TIMES if raw.get(f)}
    errors = tuple(MetaError.model_validate(e) for e in json.loads(raw.get("errors") or "[]"))
    return OutgoingMessage(
        message_id=message_id,
        recorded=raw.get("recorded") == "1",
        phone_number_id=raw.get("phone_number_id") or None,
        wa_id=raw.get("wa_id") or None,
        kind=raw.get("kind") or None,
        natural_key=raw.get("natural_key") or None,
        body_type=raw.get("body_type") or None,
        state=raw.get("state", "accepted"),
        errors=errors,
        ticket_id=raw.get("ticket_id") or None,
        **times,
    )


class OutgoingStore:
    """Reads and writes `dl:out:*`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._apply = lua.register(redis, "outgoing_apply")
        self._record = lua.register(redis, "outgoing_record")

    async def record_sent(
        self,
        message_id: str,
        *,
        phone_number_id: str,
        wa_id: str,
        kind: str,
        natural_key: str,
        body_type: str,
        sent_at: datetime,
        ticket_id: str | None = None,
    ) -> None:
        """Record a message Meta accepted (state "accepted", unless statuses already moved it).

        `ticket_id`: the ticket it was sent on, so that its statuses reach the ticket's desk.
        Idempotent on `message_id`. Kept OUTGOING_TTL_S.
        """
        await self._record(
            keys=[keys.outgoing(message_id)],
            args=[
                phone_number_id,
                wa_id,
                kind,
                natural_key,
                body_type,
                _ms(sent_at),
                keys.OUTGOING_TTL_S,
                ticket_id or "",
            ],
        )

    async def apply_status(self, update: StatusUpdate) -> ApplyResult:
        """Apply one status webhook to its message, atomically (see the module docstring).

        Idempotent: the same status twice changes nothing the second time.

        Returns:
            "applied" (the state moved), "unchanged" (late, repeated or contradictory),
            "pending" (no `record_sent` yet: kept for when it comes), or "ignored" (a status
            deskline does not track, such as `deleted`).
        """
        if update.status == "other":
            return "ignored"
        errors = ""
        if update.errors:
            errors = json.dumps(
                [e.model_dump(exclude_none=True) for e in update.errors], separators=(",", ":")
            )
        result = await self._apply(
            keys=[keys.outgoing(update.id)],
            args=[
                update.status,
                _ms(update.timestamp),
                errors,
                keys.OUTGOING_TTL_S,
                keys.OUTGOING_PENDING_TTL_S,
            ],
        )
        return cast(ApplyResult, _text(result))

    async def get(
        self, message_id: str, *, include_pending: bool = False
    ) -> OutgoingMessage | None:
        """The message and its delivery state; None when deskline did not record sending it
        (unless `include_pending`, which also returns statuses still waiting for the record)."""
        raw = await self._redis.hgetall(keys.outgoing(message_id))
        if not raw:
            return None
        message = _message(message_id, {_text(k): _text(v) for k, v in raw.items()})
        if not message.recorded and not include_pending:
            return None
        return message

    async def get_many(self, message_ids: list[str]) -> dict[str, OutgoingMessage]:
        """The recorded ones of `message_ids` (pending records left out), by id. One round trip."""
        if not message_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.hgetall(keys.outgoing(message_id))
            raws = await pipe.execute()
        found: dict[str, OutgoingMessage] = {}
        for message_id, raw in zip(message_ids, raws, strict=True):
            if raw:
                message = _message(message_id, {_text(k): _text(v) for k, v in raw.items()})
                if message.recorded:
                    found[message_id] = message
        return found
