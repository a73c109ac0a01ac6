"""Agents (name, numbers, slots, role, status), the agents of each number, and API tokens.

Tokens are stored only as SHA-256 digests (`bot.domain.auth.hash_token`): `keys.token(hash)` finds
the
agent of a presented token in one lookup, and `keys.agent_tokens(id)` lists an agent's tokens
so that they can be revoked one by one or all at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from bot.domain.config import AgentInput, AgentRecord, AgentStatus, TokenInfo
from bot.domain.errors import ConflictError, NotFoundError
from storage import keys

MAX_ATTEMPTS: Final = 50


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _multi(pipe: Pipeline) -> None:
    """Start the MULTI block of a WATCHed pipeline (leaving the `async with` unwatches)."""
    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.multi unannotated


def _record(agent_id: str, raw: dict[bytes, bytes]) -> AgentRecord | None:
    if not raw:
        return None
    changed = _text(raw.get(b"status_changed_at", b""))
    return AgentRecord(
        id=agent_id,
        name=_text(raw[b"name"]),
        numbers=tuple(json.loads(raw[b"numbers"])),
        slots=int(raw[b"slots"]),
        role=_text(raw[b"role"]),
        status=_text(raw.get(b"status", b"invisible")),
        status_changed_at=datetime.fromisoformat(changed) if changed else None,
        updated_at=datetime.fromisoformat(_text(raw[b"updated_at"])),
    )


def _busy() -> ConflictError:
    return ConflictError("busy", "too many concurrent changes to this agent; retry")


class AgentsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    # --- reads ----------------------------------------------------------------------------

    async def get(self, agent_id: str) -> AgentRecord | None:
        return _record(agent_id, await self._redis.hgetall(keys.agent(agent_id)))

    async def get_many(self, agent_ids: list[str]) -> list[AgentRecord]:
        """The existing agents among `agent_ids`, in that order (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hgetall(keys.agent(agent_id))
            raws = await pipe.execute()
        found = (_record(a, r) for a, r in zip(agent_ids, raws, strict=True))
        return [r for r in found if r is not None]

    async def ids(self) -> list[str]:
        """Every agent id, sorted."""
        return sorted(_text(m) for m in await self._redis.smembers(keys.AGENTS))

    async def ids_on_number(self, phone_number_id: str) -> set[str]:
        """Ids of the agents attached to a number (for routing)."""
        members = await self._redis.smembers(keys.number_agents(phone_number_id))
        return {_text(m) for m in members}

    async def on_number(self, phone_number_id: str) -> list[AgentRecord]:
        """The agents attached to a number, sorted by id."""
        return await self.get_many(sorted(await self.ids_on_number(phone_number_id)))

    async def for_token(self, token_hash: str) -> AgentRecord | None:
        """The agent a token authenticates (by its hash), or None: unknown or revoked."""
        agent_id = await self._redis.get(keys.token(token_hash))
        return None if agent_id is None else await self.get(_text(agent_id))

    async def tokens(self, agent_id: str) -> list[TokenInfo]:
        """An agent's live tokens (never the tokens themselves), oldest first."""
        raw = await self._redis.hgetall(keys.agent_tokens(agent_id))
        infos = []
        for token_id, value in raw.items():
            data = json.loads(value)
            infos.append(
                TokenInfo(
                    token_id=_text(token_id),
                    created_at=data["created_at"],
                    created_by=data["created_by"],
                )
            )
        return sorted(infos, key=lambda t: (t.created_at, t.token_id))

    # --- changes --------------------------------------------------------------------------

    async def put(
        self, agent_id: str, data: AgentInput, *, at: datetime
    ) -> tuple[AgentRecord, bool]:
        """Create or replace an agent, keeping its status; returns it and whether it is new.

        The per-number agent sets follow the new `numbers` in the same transaction.
        Idempotent on `agent_id`.
        """
        key = keys.agent(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    old = _record(agent_id, await pipe.hgetall(key))
                    record = AgentRecord(
                        id=agent_id,
                        **data.model_dump(),
                        status=old.status if old else "invisible",
                        status_changed_at=old.status_changed_at if old else None,
                        updated_at=at,
                    )
                    _multi(pipe)
                    pipe.hset(
                        key,
                        mapping={
                            "name": record.name,
                            "numbers": json.dumps(list(record.numbers)),
                            "slots": record.slots,
                            "role": record.role,
                            "status": record.status,
                            "status_changed_at": (
                                record.status_changed_at.isoformat()
                                if record.status_changed_at
                                else ""
                            ),
                            "updated_at": at.isoformat(),
                        },
                    )
                    for number in set(old.numbers if old else ()) - set(record.numbers):
                        pipe.srem(keys.number_agents(number), agent_id)
                    for number in record.numbers:
                        pipe.sadd(keys.number_agents(number), agent_id)
                    pipe.sadd(keys.AGENTS, agent_id)
                    await pipe.execute()
                except WatchError:
                    continue
                return record, old is None
        raise _busy()

    async def delete(self, agent_id: str) -> bool:
        """Remove an agent, detach it from its numbers and revoke all its tokens.

        Idempotent: False when there was no such agent.
        """
        key, tokens_key = keys.agent(agent_id), keys.agent_tokens(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key, tokens_key)
                    old = _record(agent_id, await pipe.hgetall(key))
                    tokens = await pipe.hvals(tokens_key)
                    _multi(pipe)
                    pipe.delete(key, tokens_key)
                    for value in tokens:
                        pipe.delete(keys.token(json.loads(value)["hash"]))
                    for number in old.numbers if old else ():
                        pipe.srem(keys.number_agents(number), agent_id)
                    pipe.srem(keys.AGENTS, agent_id)
                    await pipe.execute()
                except WatchError:
                    continue
                return old is not None
        raise _busy()

    async def set_status(
        self,
        agent_id: str,
        status: AgentStatus,
        *,
        at: datetime,
        if_numbers: Sequence[str] | None = None,
    ) -> AgentRecord:
        """Set an agent's status. Idempotent: the same status again keeps `status_changed_at`
        (routing may rank agents by how long they have been in their status).

        `if_numbers`: write only while the agent still serves exactly these numbers (checked
        in the transaction). Who may set a status depends on the agent's numbers
        (`bot.domain.auth.can_set_status`), so a caller whose right was checked against them passes
        them, and a concurrent change of the agent's numbers cannot slip in between.

        Raises:
            NotFoundError: no such agent.
            ConflictError: `agent_changed`, the agent's numbers are not `if_numbers` any more.
        """
        key = keys.agent(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    old = _record(agent_id, await pipe.hgetall(key))
                    if old is None:
                        raise NotFoundError(f"agent {agent_id} not found")
                    if if_numbers is not None and set(old.numbers) != set(if_numbers):
                        raise ConflictError(
                            "agent_changed", "the agent's numbers changed meanwhile; retry"
                        )
                    if old.status == status:
                        return old
                    _multi(pipe)
                    pipe.hset(key, mapping={"status": status, "status_changed_at": at.isoformat()})
                    await pipe.execute()
                except WatchError:
                    continue
                return old.model_copy(update={"status": status, "status_changed_at": at})
        raise _busy()

    async def add_token(
        self, agent_id: str, token_hash: str, token_id: str, *, actor: str, at: datetime
    ) -> None:
        """Make a token (by its hash) authenticate `agent_id`. Idempotent on the hash.

        Raises:
            NotFoundError: no such agent (checked in the same transaction, so a token can
                never outlive a concurrent deletion of its agent).
        """
        key = keys.agent(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    if not await pipe.exists(key):
                        raise NotFoundError(f"agent {agent_id} not found")
                    _multi(pipe)
                    pipe.set(keys.token(token_hash), agent_id)
                    info = {"hash": token_hash, "created_at": at.isoformat(), "created_by": actor}
                    pipe.hset(keys.agent_tokens(agent_id), token_id, json.dumps(info))
                    await pipe.execute()
                except WatchError:
                    continue
                return
        raise _busy()

    async def revoke_token(self, agent_id: str, token_id: str) -> bool:
        """Revoke one token of an agent. Idempotent: False when there was no such token."""
        tokens_key = keys.agent_tokens(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(tokens_key)
                    value = await pipe.hget(tokens_key, token_id)
                    if value is None:
                        return False
                    _multi(pipe)
                    pipe.delete(keys.token(json.loads(value)["hash"]))
                    pipe.hdel(tokens_key, token_id)
                    await pipe.execute()
                except WatchError:
                    continue
                return True
        raise _busy()

    async def revoke_tokens(self, agent_id: str) -> int:
        """Revoke every token of an agent; how many there were. Idempotent."""
        tokens_key = keys.agent_tokens(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(tokens_key)
                    values = await pipe.hvals(tokens_key)
                    _multi(pipe)
                    for value in values:
                        pipe.delete(keys.token(json.loads(value)["hash"]))
                    pipe.delete(tokens_key)
                    await pipe.execute()
                except WatchError:
                    continue
                return len(values)
        raise _busy()
