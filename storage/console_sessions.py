"""Web console sessions: who is signed in behind a console cookie (`keys.console_session`).

The cookie carries a random session id; Redis keeps, under the id's SHA-256, the digest of the
API token the user signed in with (never the token itself: agent tokens are stored only as
digests, and a session must not weaken that), the session's CSRF token, and the number the
user last selected. The caller is resolved again from the token digest on every request, so a
revoked token, a deleted agent or a changed role applies to the very next page.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from redis.asyncio import Redis

from bot.domain.sessions import ConsoleSession
from storage import keys

# 256 bits each: the session id is a bearer credential, the CSRF token a per-session secret.
_SECRET_BYTES: Final = 32


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class ConsoleSessionsStore:
    """Console sessions in Redis, with a sliding idle TTL and an absolute lifetime."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(self, token_hash: str, caller: str, now: datetime) -> ConsoleSession:
        """Start a session for the holder of the token whose digest is `token_hash`.

        Not idempotent by design: every sign-in gets a fresh session id and CSRF token (a new
        id on sign-in is what defeats session fixation).
        """
        session = ConsoleSession(
            id=secrets.token_urlsafe(_SECRET_BYTES),
            token_hash=token_hash,
            caller=caller,
            csrf=secrets.token_urlsafe(_SECRET_BYTES),
            created_at=now,
        )
        key = keys.console_session(_digest(session.id))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "token_hash": token_hash,
                    "caller": caller,
                    "csrf": session.csrf,
                    "created_at": str(int(now.timestamp() * 1000)),
                },
            )
            pipe.expire(key, keys.CONSOLE_SESSION_IDLE_S)
            await pipe.execute()
        return session

    async def get(
        self, session_id: str, now: datetime, *, touch: bool = True
    ) -> ConsoleSession | None:
        """The session, its idle TTL pushed back unless `touch` is False (a check that is not
        a use: an open event stream's); None when unknown, idle too long, or older than
        `keys.CONSOLE_SESSION_MAX_S` (then it is deleted)."""
        if not session_id or len(session_id) > 128:
            return None
        key = keys.console_session(_digest(session_id))
        # One round trip: EXPIRE on a missing key does nothing.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            if touch:
                pipe.expire(key, keys.CONSOLE_SESSION_IDLE_S)
            raw = (await pipe.execute())[0]
        fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
        if not fields.get("token_hash") or not fields.get("csrf"):
            return None
        try:
            created = datetime.fromtimestamp(int(fields.get("created_at", "0")) / 1000, UTC)
        except ValueError:
            created = datetime.fromtimestamp(0, UTC)
        if now - created >= timedelta(seconds=keys.CONSOLE_SESSION_MAX_S):
            await self._redis.delete(key)
            return None
        return ConsoleSession(
            id=session_id,
            token_hash=fields["token_hash"],
            caller=fields.get("caller", ""),
            csrf=fields["csrf"],
            created_at=created,
            number=fields.get("number", ""),
        )

    async def select_number(self, session_id: str, phone_number_id: str) -> None:
        """Remember the number selected in the header. Idempotent; an ended session is not
        brought back by it."""
        key = keys.console_session(_digest(session_id))
        # The EXPIRE bounds a hash that HSET recreated after the session ended; such a hash
        # has no token digest, so `get` never takes it for a session.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "number", phone_number_id)
            pipe.expire(key, keys.CONSOLE_SESSION_IDLE_S)
            await pipe.execute()

    async def delete(self, session_id: str) -> None:
        """End the session (sign-out). Idempotent."""
        await self._redis.delete(keys.console_session(_digest(session_id)))
