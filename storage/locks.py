"""Per-contact locks: one customer's messages are processed one at a time (chatwoot's mutex).

A lock is a short-TTL `SET NX PX` holding a random token; release deletes it only when the
token still matches, so a holder whose lock expired cannot free a lock someone else now holds.
The TTL bounds how long a crashed holder blocks the contact. Every write done under the lock
is idempotent and atomic on its own: the lock orders decisions, it does not guard storage.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from storage import keys, lua

# Polling interval while waiting for a busy lock.
_POLL_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class HeldLock:
    key: str
    token: str


class ContactLocks:
    """Reads and writes `dl:lock:ct:*`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = lua.register(redis, "compare_and_delete")

    async def acquire(
        self,
        phone_number_id: str,
        contact_key: str,
        *,
        ttl_s: float = keys.CONTACT_LOCK_TTL_S,
        wait_s: float = 0.0,
    ) -> HeldLock | None:
        """Take the contact's lock, waiting up to `wait_s` for a holder to finish.

        Returns None when the lock is still busy after `wait_s`.
        """
        key = keys.contact_lock(phone_number_id, contact_key)
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait_s
        while True:
            if await self._redis.set(key, token, nx=True, px=int(ttl_s * 1000)):
                return HeldLock(key, token)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL_S)

    async def release(self, lock: HeldLock) -> bool:
        """Free the lock if this holder still has it; False when it had expired meanwhile."""
        return bool(await self._release(keys=[lock.key], args=[lock.token]))
