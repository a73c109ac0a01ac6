"""Internal notes on tickets and contacts (`keys.ticket_notes`, `keys.contact_notes`).

A note is a JSON entry of a HASH keyed by the note's id, written by one script
(storage/lua/notes_add.lua) that checks, caps and expires in the same step. A ticket's notes
live as long as the ticket (no TTL while it is active; the close script of storage/tickets.py
expires them with it); a contact's notes live like its timeline, 90 days
(`keys.CONTACT_NOTES_TTL_S`) after the last one, and a note older than that is not shown.
Nothing here ever reaches the outbox: notes are the desk's own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Final

from redis.asyncio import Redis

from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.notes import Note
from storage import keys, lua

NOTES_MAX: Final = keys.NOTES_MAX


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _note(raw: bytes | str) -> Note:
    data = json.loads(raw)
    return Note(
        id=data["id"],
        author=data["author"],
        at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
        text=data["text"],
    )


class NotesStore:
    """Internal notes per ticket and per contact (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._add = lua.register(redis, "notes_add")

    async def add_to_ticket(
        self, ticket_id: str, note_id: str, author: str, text: str, *, now: datetime
    ) -> tuple[Note, bool]:
        """Add a note to the ticket; the note as stored and whether it is new.

        Idempotent on `note_id`: a note already stored is answered as it is (its text, author
        and time stay the first ones).

        Raises:
            NotFoundError: the ticket is gone.
            ConflictError: `too_many_notes` (NOTES_MAX on the ticket already).
        """
        return await self._store(
            [keys.ticket_notes(ticket_id), keys.ticket(ticket_id)],
            note_id,
            author,
            text,
            now=now,
            mode="ticket",
            what=f"ticket {ticket_id}",
        )

    async def add_to_contact(
        self,
        phone_number_id: str,
        contact_key: str,
        note_id: str,
        author: str,
        text: str,
        *,
        now: datetime,
    ) -> tuple[Note, bool]:
        """Add a note to the contact of the number; the note as stored and whether it is new.
        Drops the contact's notes older than `keys.CONTACT_NOTES_TTL_S` on the way.

        Idempotent on `note_id`, as `add_to_ticket`.

        Raises:
            ConflictError: `too_many_notes` (NOTES_MAX within the last 90 days already).
        """
        return await self._store(
            [keys.contact_notes(phone_number_id, contact_key)],
            note_id,
            author,
            text,
            now=now,
            mode="contact",
            what="this contact",
        )

    async def _store(
        self,
        key_list: list[str],
        note_id: str,
        author: str,
        text: str,
        *,
        now: datetime,
        mode: str,
        what: str,
    ) -> tuple[Note, bool]:
        entry = json.dumps(
            {"id": note_id, "author": author, "at": _ms(now), "text": text},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        cutoff = _ms(now - timedelta(seconds=keys.CONTACT_NOTES_TTL_S))
        raw = await self._add(
            keys=key_list,
            args=[note_id, entry, NOTES_MAX, mode, keys.CONTACT_NOTES_TTL_S, cutoff],
        )
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"{what} not found")
        if outcome == "full":
            raise ConflictError("too_many_notes", f"{what} has {NOTES_MAX} notes already")
        return _note(raw[1]), outcome == "new"

    async def for_ticket(self, ticket_id: str) -> list[Note]:
        """The ticket's notes, oldest first."""
        return self._sorted(await self._redis.hvals(keys.ticket_notes(ticket_id)))

    async def for_contact(
        self, phone_number_id: str, contact_key: str, *, now: datetime
    ) -> list[Note]:
        """The contact's notes of the last `keys.CONTACT_NOTES_TTL_S`, oldest first."""
        raw = await self._redis.hvals(keys.contact_notes(phone_number_id, contact_key))
        cutoff = now - timedelta(seconds=keys.CONTACT_NOTES_TTL_S)
        return [n for n in self._sorted(raw) if n.at >= cutoff]

    @staticmethod
    def _sorted(raw: list[bytes] | list[str]) -> list[Note]:
        return sorted((_note(r) for r in raw), key=lambda n: (n.at, n.id))
