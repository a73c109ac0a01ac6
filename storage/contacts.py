"""Contacts: one customer per (number, contact key), kept forever, with their 24-hour window."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from redis.asyncio import Redis

from bot import phones
from bot.errors import InvalidInputError
from bot.models import Contact, InboundMessage
from storage import keys

# One round trip, atomic, idempotent. Identity fields (wa_id, user_id, phone, name) follow the
# newest message applied so far (`seen_at`), so a late-processed older message only fills gaps
# and never reverts a name; `last_inbound_at` and `last_interaction_at` only move forward;
# `first_seen` only moves back. Applying the same message again therefore writes the values
# that are already there.
_UPSERT_LUA: Final = """
local h, recent, uids = KEYS[1], KEYS[2], KEYS[3]
local key, ts_s, name, wa_id, user_id, phone, opens = unpack(ARGV)
local ts = tonumber(ts_s)
local function num(field)
  local v = redis.call('HGET', h, field)
  if v then return tonumber(v) end
  return nil
end
local first = num('first_seen')
if not first or ts < first then redis.call('HSET', h, 'first_seen', ts_s) end
local seen = num('seen_at')
local newest = (not seen) or ts >= seen
if newest then redis.call('HSET', h, 'seen_at', ts_s) end
local function put(field, value)
  if value == '' then return end
  if newest then redis.call('HSET', h, field, value) else redis.call('HSETNX', h, field, value) end
end
put('wa_id', wa_id)
put('phone', phone)
put('user_id', user_id)
put('name', name)
if opens == '1' then
  local last_in = num('last_inbound_at')
  if not last_in or ts > last_in then redis.call('HSET', h, 'last_inbound_at', ts_s) end
  local last_ia = num('last_interaction_at')
  if not last_ia or ts > last_ia then redis.call('HSET', h, 'last_interaction_at', ts_s) end
end
redis.call('ZADD', recent, num('last_interaction_at') or num('first_seen'), key)
if user_id ~= '' then redis.call('HSET', uids, user_id, key) end
return redis.call('HGETALL', h)
"""

# Outbound messages move `last_interaction_at` forward, on an existing contact only.
_TOUCH_LUA: Final = """
local h, recent = KEYS[1], KEYS[2]
local key, ts_s = ARGV[1], ARGV[2]
if redis.call('EXISTS', h) == 0 then return 0 end
local cur = redis.call('HGET', h, 'last_interaction_at')
if not cur or tonumber(ts_s) > tonumber(cur) then
  redis.call('HSET', h, 'last_interaction_at', ts_s)
  redis.call('ZADD', recent, ts_s, key)
end
return 1
"""

_TIME_FIELDS: Final = ("first_seen", "last_inbound_at", "last_interaction_at")
_TEXT_FIELDS: Final = ("name", "wa_id", "user_id", "phone", "email", "city", "document")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(value: bytes | str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _contact(phone_number_id: str, key: str, raw: Mapping[str, str]) -> Contact:
    extra: dict[str, str] = {}
    if raw.get("extra"):
        loaded = json.loads(raw["extra"])
        if isinstance(loaded, dict):
            extra = {str(k): str(v) for k, v in loaded.items()}
    first_seen = _from_ms(raw.get("first_seen")) or datetime.fromtimestamp(0, tz=UTC)
    return Contact(
        phone_number_id=phone_number_id,
        key=key,
        extra=extra,
        first_seen=first_seen,
        last_inbound_at=_from_ms(raw.get("last_inbound_at")),
        last_interaction_at=_from_ms(raw.get("last_interaction_at")),
        **{f: raw[f] for f in _TEXT_FIELDS if raw.get(f)},
    )


async def resolve_key(redis: Redis, phone_number_id: str, ident: str) -> str:
    """The contact key of `ident`: a contact key, a wa_id or phone number, or a BSUID we saw.

    A phone number maps by `bot.phones.contact_key` (no I/O); a business-scoped user id maps
    through the number's user-id index; anything else is `x:<ident>`.
    """
    if ident.startswith((phones.USER_PREFIX, phones.OTHER_PREFIX)) or phones.digits(ident):
        return phones.contact_key(ident)
    known = await redis.hget(keys.contact_user_ids(phone_number_id), ident)
    return _text(known) if known is not None else phones.contact_key(ident)


async def sender_key(
    redis: Redis, phone_number_id: str, wa_id: str | None, user_id: str | None
) -> str | None:
    """The contact key of a message's sender: by phone number when there is one, else by
    BSUID (through the user-id index when that BSUID was seen next to a number). None when
    the message has no sender."""
    if wa_id:
        return phones.contact_key(wa_id)
    if user_id:
        known = await redis.hget(keys.contact_user_ids(phone_number_id), user_id)
        return _text(known) if known is not None else phones.user_key(user_id)
    return None


class ContactsStore:
    """Contacts by (phone_number_id, contact key). Reads and writes only `dl:ct*` keys."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # register_script: EVALSHA, loading the script again after a Redis restart.
        self._upsert = redis.register_script(_UPSERT_LUA)
        self._touch = redis.register_script(_TOUCH_LUA)

    async def key_for(self, phone_number_id: str, wa_id: str | None, user_id: str | None) -> str:
        """The contact key of a sender: by phone number when there is one, else by BSUID.

        A BSUID seen before next to a phone number maps to that number's contact, so a
        customer who later hides their number behind a username stays the same contact.

        Raises:
            InvalidInputError: neither `wa_id` nor `user_id` is given.
        """
        key = await sender_key(self._redis, phone_number_id, wa_id, user_id)
        if key is None:
            raise InvalidInputError("a contact needs a wa_id or a user_id", field="from")
        return key

    async def upsert_from_inbound(self, msg: InboundMessage, *, key: str | None = None) -> Contact:
        """Create or update the sender's contact from one inbound message, atomically.

        Idempotent on the message: applying it again changes nothing. Order-safe: an older
        message processed late never moves `last_inbound_at` back nor reverts the name.
        System messages (not written by the customer) do not open the 24-hour window.

        Args:
            key: the contact key when the caller already resolved it (see `key_for`).

        Raises:
            InvalidInputError: the message has no sender.
        """
        if key is None:
            key = await self.key_for(msg.phone_number_id, msg.wa_id, msg.user_id)
        pnid = msg.phone_number_id
        phone = phones.e164(msg.wa_id) if msg.wa_id else None
        raw = await self._upsert(
            keys=[keys.contact(pnid, key), keys.contacts_recent(pnid), keys.contact_user_ids(pnid)],
            args=[
                key,
                _ms(msg.timestamp),
                msg.profile_name or "",
                msg.wa_id or "",
                msg.user_id or "",
                phone or "",
                "1" if msg.opens_window else "0",
            ],
        )
        flat = [_text(v) for v in raw]
        return _contact(pnid, key, dict(zip(flat[::2], flat[1::2], strict=True)))

    async def get(self, phone_number_id: str, wa_id_or_key: str) -> Contact | None:
        """The contact for a wa_id (any spelling of the number), a BSUID, or a contact key."""
        key = await resolve_key(self._redis, phone_number_id, wa_id_or_key)
        raw = await self._redis.hgetall(keys.contact(phone_number_id, key))
        if not raw:
            return None
        return _contact(phone_number_id, key, {_text(k): _text(v) for k, v in raw.items()})

    async def window_open(self, phone_number_id: str, wa_id: str, now: datetime) -> bool:
        """True while `now` is within 24 hours after the contact's last message (Meta's time).

        False for an unknown contact: deskline never heard from them.
        """
        contact = await self.get(phone_number_id, wa_id)
        return contact is not None and contact.window_open(now)

    async def record_outbound(self, phone_number_id: str, wa_id_or_key: str, at: datetime) -> bool:
        """Move `last_interaction_at` forward to `at` for a message we sent. Idempotent.

        Returns False (and writes nothing) when the contact does not exist.
        """
        key = await resolve_key(self._redis, phone_number_id, wa_id_or_key)
        done = await self._touch(
            keys=[keys.contact(phone_number_id, key), keys.contacts_recent(phone_number_id)],
            args=[key, _ms(at)],
        )
        return bool(done)

    async def recent(self, phone_number_id: str, limit: int = 50) -> list[Contact]:
        """A number's contacts, latest interaction first."""
        members = await self._redis.zrevrange(keys.contacts_recent(phone_number_id), 0, limit - 1)
        out: list[Contact] = []
        for member in members:
            contact = await self.get(phone_number_id, _text(member))
            if contact is not None:
                out.append(contact)
        return out
