"""Timelines: a contact's messages in and out, ordered by Meta's timestamp, kept 90 days.

Per (number, contact key), a ZSET (message id -> timestamp in seconds) orders the entries and
a HASH (message id -> compact JSON) holds them. An entry carries no raw payload: the claim
keeps that for 8 days; a timeline entry is the type, a short text and a few ids.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Final

from redis.asyncio import Redis

from bot.domain.models import InboundMessage, TimelineEntry
from storage import keys, lua
from storage.contacts import resolve_key, sender_key

RETENTION_S: Final = keys.TIMELINE_TTL_S
# WhatsApp caps a text body at 4,096 characters; captions and titles are shorter.
TEXT_MAX: Final = 4096
# An entry stamped further ahead of the server's clock than this does not define "newest"
# for the trim (a bogus future timestamp must not erase a timeline).
FUTURE_SLACK_S: Final = 24 * 3600


def _entry(**fields: Any) -> str:
    compact = {k: v for k, v in fields.items() if v is not None}
    return json.dumps(compact, separators=(",", ":"), ensure_ascii=False)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:TEXT_MAX]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TimelineStore:
    """Reads and writes `dl:tl:*` / `dl:tle:*` (and reads the contacts' user-id index)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._add_script = lua.register(redis, "timeline_add")

    async def add_inbound(self, msg: InboundMessage, *, key: str | None = None) -> bool:
        """Put a customer's message on their timeline. Idempotent on the wamid.

        Args:
            key: the contact key when the caller resolved it (ContactsStore.key_for); by
                default it is derived from the sender.

        Returns:
            True when the entry is new and within the retention; False for a repeat, for a
            message older than the retention, or for a message without a sender.
        """
        if key is None:
            key = await sender_key(self._redis, msg.phone_number_id, msg.wa_id, msg.user_id)
            if key is None:
                return False
        entry = _entry(d="in", t=msg.type, x=_clip(msg.text), b=msg.button_reply_id)
        return await self._add(msg.phone_number_id, key, msg.wamid, msg.timestamp, entry)

    async def add_outbound(
        self,
        phone_number_id: str,
        wa_id: str,
        message_id: str,
        kind: str,
        text: str | None,
        at: datetime,
        *,
        natural_key: str | None = None,
    ) -> bool:
        """Put a message deskline sent on the contact's timeline. Idempotent on `message_id`.

        Args:
            wa_id: the contact's wa_id, BSUID or contact key (a key is the safest: see
                storage.contacts.resolve_key).
            kind: what the message was (`after_hours`, `agent`, ...).
            text: a readable summary of what was sent.
            natural_key: the send's key (ReplyRequest.natural_key), kept on the entry so a
                ticket's conversation can join an agent's reply to its delivery state.

        Returns:
            True when the entry is new.
        """
        key = await resolve_key(self._redis, phone_number_id, wa_id)
        entry = _entry(d="out", k=kind, x=_clip(text), n=natural_key)
        return await self._add(phone_number_id, key, message_id, at, entry)

    async def _add(self, pnid: str, key: str, member: str, at: datetime, entry: str) -> bool:
        new, kept = await self._add_script(
            keys=[keys.timeline(pnid, key), keys.timeline_entries(pnid, key)],
            args=[
                member,
                repr(at.timestamp()),
                entry,
                RETENTION_S,
                keys.TIMELINE_TTL_S,
                int(time.time()) + FUTURE_SLACK_S,
            ],
        )
        return bool(new) and bool(kept)

    async def list(
        self,
        phone_number_id: str,
        wa_id: str,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[TimelineEntry]:
        """The latest `limit` entries at or after `since`, oldest first.

        Args:
            wa_id: a wa_id (any spelling of the number), a BSUID or a contact key.
        """
        key = await resolve_key(self._redis, phone_number_id, wa_id)
        low = "-inf" if since is None else repr(since.timestamp())
        pairs = await self._redis.zrevrangebyscore(
            keys.timeline(phone_number_id, key), "+inf", low, start=0, num=limit, withscores=True
        )
        if not pairs:
            return []
        pairs.reverse()
        ids = [_text(member) for member, _ in pairs]
        raw = await self._redis.hmget(keys.timeline_entries(phone_number_id, key), ids)
        out: list[TimelineEntry] = []
        for (message_id, (_, score)), value in zip(zip(ids, pairs, strict=True), raw, strict=True):
            if value is None:
                continue  # trimmed between the two reads
            out.append(_timeline_entry(message_id, float(score), value))
        return out

    async def get(
        self, phone_number_id: str, contact_key: str, message_id: str
    ) -> TimelineEntry | None:
        """One entry of the contact's timeline by its message id; None when it is not there
        (never stored, or past the retention). Reads only."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zscore(keys.timeline(phone_number_id, contact_key), message_id)
            pipe.hget(keys.timeline_entries(phone_number_id, contact_key), message_id)
            score, value = await pipe.execute()
        if score is None or value is None:
            return None
        return _timeline_entry(message_id, float(score), value)


def _timeline_entry(message_id: str, score: float, value: bytes | str) -> TimelineEntry:
    data = json.loads(value)
    return TimelineEntry(
        id=message_id,
        direction="in" if data.get("d") == "in" else "out",
        at=datetime.fromtimestamp(score, tz=UTC),
        type=data.get("t"),
        kind=data.get("k"),
        text=data.get("x"),
        button_reply_id=data.get("b"),
        natural_key=data.get("n"),
    )
