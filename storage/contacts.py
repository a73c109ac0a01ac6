"""Contacts: one customer per (number, contact key), kept forever, with their 24-hour window."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from redis.asyncio import Redis

from bot.domain import phones
from bot.domain.contacts import ContactFilter, Cursor, Query, fold, name_tokens, phone_tokens
from bot.domain.contacts_import import ImportRow
from bot.domain.errors import InvalidInputError
from bot.domain.models import Contact, InboundMessage
from storage import keys, lua
from storage.search import CANDIDATES_MAX, SearchIndex

_TIME_FIELDS: Final = ("first_seen", "last_inbound_at", "last_interaction_at")
# Imported columns other than the known fields are kept as hash fields `x:<column>`.
EXTRA_PREFIX: Final = "x:"
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
    extra.update(
        {f.removeprefix(EXTRA_PREFIX): v for f, v in raw.items() if f.startswith(EXTRA_PREFIX)}
    )
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

    A phone number maps by `bot.domain.phones.contact_key` (no I/O); a business-scoped user id maps
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


# Rows per pipelined round trip of an import.
IMPORT_BATCH: Final = 500
# Contacts a filtered listing examines per call (it hands out a cursor to go on): about 10 ms
# of Redis time.
SCAN_MAX: Final = 10_000


@dataclass(frozen=True, slots=True)
class ImportCounts:
    imported: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Contacts in answer order; `truncated` when more matched than `limit` (or a prefix
    range hit its cap)."""

    contacts: list[Contact]
    truncated: bool


def _decoded(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _ordered(scored: list[tuple[int, str]]) -> list[tuple[int, str]]:
    # ZREVRANGEBYSCORE's order: score descending, then member descending.
    return sorted(scored, reverse=True)


def _from_position(scored: list[tuple[int, str]], at: Cursor | None) -> list[tuple[int, str]]:
    """The members of an `_ordered` list from the cursor on."""
    if at is None:
        return scored
    skipped = 0
    for i, (score, _) in enumerate(scored):
        if score < at.score:
            return scored[i:]
        if score == at.score:
            if skipped == at.skip:
                return scored[i:]
            skipped += 1
    return []


class ContactsStore:
    """Contacts by (phone_number_id, contact key), and their search index. Reads and writes
    only `dl:ct*` keys."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # register_script: EVALSHA, loading the script again after a Redis restart.
        self._upsert = lua.register(redis, "contacts_upsert")
        self._touch = lua.register(redis, "contacts_touch")
        self._import = lua.register(redis, "contacts_import")
        self._reindex = lua.register(redis, "contacts_reindex")
        self._scan = lua.register(redis, "contacts_scan")
        self._index = SearchIndex(redis)

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
            keys=[
                keys.contact(pnid, key),
                keys.contacts_recent(pnid),
                keys.contact_user_ids(pnid),
                keys.contact_index(pnid),
            ],
            args=[
                key,
                _ms(msg.timestamp),
                msg.profile_name or "",
                msg.wa_id or "",
                msg.user_id or "",
                phone or "",
                "1" if msg.opens_window else "0",
                " ".join(name_tokens(msg.profile_name)),
                " ".join(phone_tokens(phone)),
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

    async def get_many(
        self, phone_number_id: str, contact_keys: Sequence[str]
    ) -> dict[str, Contact]:
        """The existing contacts among `contact_keys` (keys, not wa_ids), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in contact_keys:
                pipe.hgetall(keys.contact(phone_number_id, key))
            raws = await pipe.execute()
        return {
            key: _contact(phone_number_id, key, _decoded(raw))
            for key, raw in zip(contact_keys, raws, strict=True)
            if raw
        }

    async def import_rows(
        self, phone_number_id: str, rows: Sequence[ImportRow], at: datetime
    ) -> ImportCounts:
        """Create or update one contact per row (bot.domain.contacts_import), IMPORT_BATCH rows per
        round trip, each row atomic.

        Idempotent on the contact key: the same rows again change nothing and count as
        unchanged. Values absent from a row are kept. An import never opens the 24-hour
        window nor moves `last_interaction_at`; a new contact lists after every contact that
        interacted. The search index follows the names and numbers written.
        """
        imported = updated = unchanged = 0
        pnid = phone_number_id
        for start in range(0, len(rows), IMPORT_BATCH):
            batch = rows[start : start + IMPORT_BATCH]
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in batch:
                    extra = [part for item in sorted(row.extra.items()) for part in item]
                    await self._import(
                        keys=[
                            keys.contact(pnid, row.key),
                            keys.contacts_recent(pnid),
                            keys.contact_index(pnid),
                        ],
                        args=[
                            row.key,
                            _ms(at),
                            row.phone,
                            row.wa_id,
                            row.name or "",
                            row.email or "",
                            row.city or "",
                            row.document or "",
                            " ".join(name_tokens(row.name)),
                            " ".join(phone_tokens(row.phone)),
                            fold(row.email or ""),
                            fold(row.city or ""),
                            fold(row.document or ""),
                            *extra,
                        ],
                        client=pipe,
                    )
                results = await pipe.execute()
            for existed, changed in results:
                if not existed:
                    imported += 1
                elif changed:
                    updated += 1
                else:
                    unchanged += 1
        return ImportCounts(imported, updated, unchanged)

    async def search(self, numbers: Sequence[str], query: Query, limit: int) -> SearchResult:
        """The contacts matching `query` on any of `numbers`: most recent interaction first,
        then by number and contact key (a stable order), at most `limit`.

        Two round trips whatever the number of numbers: the index (storage.search), then
        the contacts.
        """
        answers = await self._index.top(numbers, query, limit)
        hits = sorted(
            (-score, number, key) for number, a in answers.items() for score, key in a.hits
        )
        matched = sum(a.matched for a in answers.values())
        truncated = matched > limit or any(a.truncated for a in answers.values())
        top = hits[:limit]
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, number, key in top:
                pipe.hgetall(keys.contact(number, key))
            raws = await pipe.execute()
        contacts = [
            _contact(number, key, _decoded(raw))
            for (_, number, key), raw in zip(top, raws, strict=True)
            if raw
        ]
        return SearchResult(contacts, truncated)

    async def page(
        self, phone_number_id: str, where: ContactFilter, cursor: Cursor | None, limit: int
    ) -> tuple[list[Contact], Cursor | None]:
        """A page of a number's contacts, latest interaction first, that pass `where`.

        A name or phone filter reads its candidates from the search index (at most
        CANDIDATES_MAX); the other filters walk the recency index next to the data, at most
        SCAN_MAX contacts per call, so a selective filter may answer fewer than `limit`
        contacts with a cursor to go on. Returns the contacts and the cursor of the next page
        (None at the end).
        """
        pnid = phone_number_id
        if where.id is not None:
            contact = await self.get(pnid, where.id)
            return ([contact] if contact is not None and where.matches(contact) else []), None
        low = _ms(where.since) if where.since is not None else None
        high = _ms(where.until) if where.until is not None else None
        position = cursor
        if high is not None and (position is None or high < position.score):
            position = Cursor(high, 0)
        query = where.index_query
        if query is None:
            return await self._scan_page(pnid, where, position, low, limit)
        answer = (await self._index.top([pnid], query, CANDIDATES_MAX))[pnid]
        in_period = [
            (score, key)
            for score, key in answer.hits
            if (low is None or score >= low) and (high is None or score <= high)
        ]
        batch = _from_position(_ordered(in_period), position)
        contacts = await self.get_many(pnid, [k for _, k in batch])
        found: list[Contact] = []
        for score, key in batch:
            contact = contacts.get(key)
            if contact is not None and where.matches(contact):
                if len(found) == limit:
                    return found, position
                found.append(contact)
            position = Cursor(score, 1) if position is None else position.after(score)
        return found, None

    async def _scan_page(
        self,
        pnid: str,
        where: ContactFilter,
        position: Cursor | None,
        low: int | None,
        limit: int,
    ) -> tuple[list[Contact], Cursor | None]:
        needles = [
            (f"f:{name}", fold(value))
            for name, value in (
                ("email", where.email),
                ("city", where.city),
                ("document", where.document),
            )
            if value is not None
        ]
        period = where.since is not None or where.until is not None
        budget = SCAN_MAX if needles or period else limit + 1
        reply = await self._scan(
            keys=[keys.contacts_recent(pnid)],
            args=[
                keys.contact(pnid, ""),
                "" if position is None else position.score,
                0 if position is None else position.skip,
                "-inf" if low is None else low,
                budget,
                limit,
                "1" if period else "0",
                *[part for pair in needles for part in pair],
            ],
        )
        flat = [_text(v) if isinstance(v, bytes | str) else v for v in reply]
        at, taken, done, found = flat[0], int(flat[1]), int(flat[2]), [str(k) for k in flat[3:]]
        contacts = await self.get_many(pnid, found)
        # The script matched on the folded copies; the filter itself has the last word.
        page = [contacts[k] for k in found if k in contacts and where.matches(contacts[k])]
        if done:
            return page, None
        return page, Cursor(int(at), taken) if at != "" else position

    async def rebuild_index(self, phone_number_id: str) -> int:
        """Index every contact of the number again (contacts stored before the index existed).

        Walks the recency index, not a SCAN. Idempotent. Returns the contacts examined.
        """
        pnid = phone_number_id
        members = [_text(m) for m in await self._redis.zrange(keys.contacts_recent(pnid), 0, -1)]
        for start in range(0, len(members), IMPORT_BATCH):
            batch = members[start : start + IMPORT_BATCH]
            contacts = await self.get_many(pnid, batch)
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, contact in contacts.items():
                    await self._reindex(
                        keys=[keys.contact(pnid, key), keys.contact_index(pnid)],
                        args=[
                            key,
                            contact.name or "",
                            contact.phone or "",
                            " ".join(name_tokens(contact.name)),
                            " ".join(phone_tokens(contact.phone)),
                        ],
                        client=pipe,
                    )
                await pipe.execute()
        return len(members)
