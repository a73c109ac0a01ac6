"""The numbers deskline serves and their chatbot settings, versioned, with their audit log.

Every web and worker process reads the settings from Redis when it needs them, so a change
takes effect for the next message without a restart. Parsed settings are cached per process
by the exact stored bytes (read from Redis on every call), so the cache can never be stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from bot.domain.config import (
    AuditAction,
    AuditEntry,
    NumberConfig,
    StoredNumber,
    changed_fields,
    new_document,
    parse_config,
    patched_document,
)
from bot.domain.errors import ConflictError, NotFoundError
from storage import keys
from storage.audit import queue_entry

# Optimistic transactions retried this many times under contention before giving up (409).
MAX_ATTEMPTS: Final = 50
# Parsed settings kept per process, keyed by their stored bytes (not a source of truth).
PARSED_CACHE_MAX: Final = 4096

# A change computes, from the current state, the document to store (None: delete) and the
# audit action; it raises InvalidInputError / NotFoundError to leave storage untouched.
_Change = Callable[
    [StoredNumber | None], tuple[dict[str, Any] | None, NumberConfig | None, AuditAction] | None
]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _multi(pipe: Pipeline) -> None:
    """Start the MULTI block of a WATCHed pipeline (leaving the `async with` unwatches)."""
    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.multi unannotated


class NumbersStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._parsed: dict[bytes, NumberConfig] = {}

    # --- reads ----------------------------------------------------------------------------

    async def get(self, phone_number_id: str) -> StoredNumber | None:
        """The number's settings as stored now (None when it is not served).

        One HGETALL per call: there is no cache that a change in another process could leave
        stale.
        """
        raw = await self._redis.hgetall(keys.number(phone_number_id))
        return self._decode(phone_number_id, raw)

    async def config(self, phone_number_id: str) -> NumberConfig | None:
        """Just the parsed settings (what the chatbot rules need), or None."""
        stored = await self.get(phone_number_id)
        return None if stored is None else stored.config

    async def ids(self) -> list[str]:
        """Every served phone_number_id (the `keys.NUMBERS` set), sorted."""
        return sorted(_text(m) for m in await self._redis.smembers(keys.NUMBERS))

    async def get_many(self, phone_number_ids: list[str]) -> list[StoredNumber]:
        """The served numbers among `phone_number_ids`, in that order (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for pnid in phone_number_ids:
                pipe.hgetall(keys.number(pnid))
            raws = await pipe.execute()
        found = (self._decode(p, r) for p, r in zip(phone_number_ids, raws, strict=True))
        return [s for s in found if s is not None]

    def _decode(self, phone_number_id: str, raw: dict[bytes, bytes]) -> StoredNumber | None:
        doc = raw.get(b"doc")
        if doc is None:
            return None
        config = self._parsed.get(doc)
        if config is None:
            config = parse_config(json.loads(doc))
            if len(self._parsed) >= PARSED_CACHE_MAX:
                self._parsed.clear()
            self._parsed[doc] = config
        return StoredNumber(
            phone_number_id=phone_number_id,
            version=int(raw[b"version"]),
            document=json.loads(doc),
            config=config,
            updated_at=datetime.fromisoformat(_text(raw[b"updated_at"])),
            updated_by=_text(raw[b"updated_by"]),
        )

    # --- changes --------------------------------------------------------------------------

    async def put(
        self, phone_number_id: str, body: Any, *, actor: str, at: datetime
    ) -> tuple[StoredNumber, bool]:
        """Create or replace a number's settings and serve it (adds it to `keys.NUMBERS`).

        Idempotent: the same body again changes nothing (same version, no audit entry).
        Returns the stored number and whether it was created.

        Raises:
            InvalidInputError: the body is invalid; nothing is stored.
        """
        document, config = new_document(body)
        created = False

        def change(
            current: StoredNumber | None,
        ) -> tuple[dict[str, Any], NumberConfig, AuditAction] | None:
            nonlocal created
            created = current is None
            if current is not None and current.document == document:
                return None
            return document, config, "create" if current is None else "replace"

        stored = await self._change(phone_number_id, change, actor=actor, at=at)
        assert stored is not None
        return stored, created

    async def patch(
        self, phone_number_id: str, patch: Any, *, actor: str, at: datetime
    ) -> StoredNumber:
        """Apply a JSON Merge Patch (RFC 7386) to a number's settings, atomically.

        Concurrent patches never lose each other's fields: each is applied to the version it
        read, and the write only succeeds if that version is still current (WATCH/MULTI),
        otherwise it is applied again to the newer one. A patch that changes nothing writes
        nothing (idempotent).

        Raises:
            NotFoundError: the number is not served.
            InvalidInputError: the patch or the merged settings are invalid; nothing is stored.
            ConflictError: `busy`, when contention outlasted MAX_ATTEMPTS tries.
        """

        def change(
            current: StoredNumber | None,
        ) -> tuple[dict[str, Any], NumberConfig, AuditAction] | None:
            if current is None:
                raise NotFoundError(f"number {phone_number_id} not found")
            document, config = patched_document(current.document, patch)
            if document == current.document:
                return None
            return document, config, "patch"

        stored = await self._change(phone_number_id, change, actor=actor, at=at)
        assert stored is not None
        return stored

    async def delete(self, phone_number_id: str, *, actor: str, at: datetime) -> bool:
        """Stop serving a number: its settings go, it leaves `keys.NUMBERS`, the deletion is
        audited. Its version counter and audit log stay. Idempotent: False when not served."""
        existed = False

        def change(current: StoredNumber | None) -> tuple[None, None, AuditAction] | None:
            nonlocal existed
            existed = current is not None
            return None if current is None else (None, None, "delete")

        await self._change(phone_number_id, change, actor=actor, at=at)
        return existed

    async def _change(
        self, phone_number_id: str, change: _Change, *, actor: str, at: datetime
    ) -> StoredNumber | None:
        key = keys.number(phone_number_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    raw = await pipe.hgetall(key)
                    current = self._decode(phone_number_id, raw)
                    outcome = change(current)
                    if outcome is None:
                        return current
                    document, config, action = outcome
                    version = int(raw.get(b"version", 0)) + 1
                    _multi(pipe)
                    self._queue_write(pipe, phone_number_id, document, version, actor, at)
                    entry = AuditEntry(
                        at=at,
                        actor=actor,
                        action=action,
                        version=version,
                        changes=changed_fields(None if current is None else current.config, config),
                    )
                    queue_entry(pipe, phone_number_id, entry)
                    await pipe.execute()
                except WatchError:
                    # Another process changed the number between our read and our write: the
                    # change is computed again on what it wrote.
                    continue
                if document is None or config is None:
                    return None
                return StoredNumber(
                    phone_number_id=phone_number_id,
                    version=version,
                    document=document,
                    config=config,
                    updated_at=at,
                    updated_by=actor,
                )
        raise ConflictError("busy", "too many concurrent changes to this number; retry")

    @staticmethod
    def _queue_write(
        pipe: Pipeline,
        phone_number_id: str,
        document: dict[str, Any] | None,
        version: int,
        actor: str,
        at: datetime,
    ) -> None:
        key = keys.number(phone_number_id)
        meta = {"version": version, "updated_at": at.isoformat(), "updated_by": actor}
        if document is None:
            pipe.hdel(key, "doc")
            pipe.hset(key, mapping=meta)
            pipe.srem(keys.NUMBERS, phone_number_id)
        else:
            pipe.hset(key, mapping={"doc": json.dumps(document, sort_keys=True), **meta})
            pipe.sadd(keys.NUMBERS, phone_number_id)
