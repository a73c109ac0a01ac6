"""Agents' desk events: one Redis stream per agent, so that any web process can serve them.

An event is a stream entry with two fields, `type` (`ticket.routed`, `after_hours.contact`,
...) and `data` (a JSON object). Its id is the stream id Redis gives it ("<ms>-<seq>"), which
is also the SSE `id:` a browser sends back as `Last-Event-ID` to resume.

The routing scripts of storage/tickets.py write ticket events with the same two fields inside
the script that makes the change, so an event is never lost between a change and its
announcement; other producers call `publish`.

The store also counts the event streams each user has open, across every web process
(`claim_stream`, `keep_stream`, `release_stream`), so that one token or session cannot hold
an unbounded number of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis

from bot.domain.events import START, Event, is_event_id
from storage import keys, lua

__all__ = ["READ_COUNT", "START", "Event", "EventsStore", "is_event_id"]

# How many events one read returns at most (a reconnecting desk catches up in pages).
READ_COUNT: Final = 100


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class EventsStore:
    """Per-agent event streams (`keys.agent_events`)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = lua.register(redis, "events_claim_stream")
        self._keep = lua.register(redis, "events_keep_stream")
        self._once = lua.register(redis, "events_publish_once")

    async def publish(self, agent_id: str, type: str, data: dict[str, Any]) -> str:
        """Append one event to the agent's stream; its id.

        Not idempotent (a stream gives every append a new id): producers publish after their
        own idempotent change succeeded, and only the first time it did. The stream keeps about
        `keys.AGENT_EVENTS_MAX` events and expires `keys.AGENT_EVENTS_TTL_S` after the last one.
        """
        key = keys.agent_events(agent_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                key,
                {"type": type, "data": json.dumps(data, separators=(",", ":"))},
                maxlen=keys.AGENT_EVENTS_MAX,
                approximate=True,
            )
            pipe.expire(key, keys.AGENT_EVENTS_TTL_S)
            event_id, _ = await pipe.execute()
        return _text(event_id)

    async def publish_once(
        self, agent_ids: Sequence[str], type: str, data: dict[str, Any], *, once_key: str
    ) -> int:
        """Append one event to each agent's stream (one XADD each), unless `once_key` was
        published before: idempotent on `once_key` for `keys.EVENT_ONCE_TTL_S`.

        Marker and appends are one script, so a producer may call this after its own change
        on every run of its job: the first run that gets here publishes, the others do not.
        With no agent nothing is published and nothing is marked.

        Returns:
            How many streams got the event (0: published before, or no agent).
        """
        if not agent_ids:
            return 0
        reached = await self._once(
            keys=[keys.event_once(once_key), *(keys.agent_events(a) for a in agent_ids)],
            args=[
                keys.EVENT_ONCE_TTL_S,
                type,
                json.dumps(data, separators=(",", ":")),
                keys.AGENT_EVENTS_MAX,
                keys.AGENT_EVENTS_TTL_S,
            ],
        )
        return int(reached)

    async def number_agents(self, phone_number_id: str) -> list[str]:
        """The agents attached to the number, in id order."""
        members = await self._redis.smembers(keys.number_agents(phone_number_id))
        return sorted(_text(m) for m in members)

    async def publish_to_number(
        self,
        phone_number_id: str,
        type: str,
        data: dict[str, Any],
        *,
        only_online: bool = False,
    ) -> list[str]:
        """Publish one event to every agent attached to the number (only the online ones when
        `only_online`); the event ids, one per agent reached, in agent id order."""
        members = await self._redis.smembers(keys.number_agents(phone_number_id))
        agent_ids = sorted(_text(m) for m in members)
        if only_online and agent_ids:
            async with self._redis.pipeline(transaction=False) as pipe:
                for agent_id in agent_ids:
                    pipe.hget(keys.agent(agent_id), "status")
                statuses = await pipe.execute()
            agent_ids = [
                a for a, s in zip(agent_ids, statuses, strict=True) if s in (b"online", "online")
            ]
        return [await self.publish(agent_id, type, data) for agent_id in agent_ids]

    async def latest_id(self, agent_id: str) -> str:
        """The id of the agent's newest event, or START when there is none: reading after it
        returns only events published from now on."""
        newest = await self._redis.xrevrange(keys.agent_events(agent_id), count=1)
        return _text(newest[0][0]) if newest else START

    async def read(self, agent_id: str, last_id: str, block_ms: int | None = None) -> list[Event]:
        """The agent's events after `last_id`, oldest first, at most READ_COUNT.

        Args:
            last_id: a stream id (see `is_event_id`), or START for the whole stream. Events
                trimmed by the cap are gone: a desk that was away that long reloads its lists.
            block_ms: wait up to this long for an event when there is none yet; None answers
                at once. A blocked read holds a pooled connection, so the SSE handler polls
                instead (see handlers/sse.py).

        Raises:
            ValueError: `last_id` is not a stream id.
        """
        if not is_event_id(last_id):
            raise ValueError(f"not an event id: {last_id!r}")
        reply = await self._redis.xread(
            {keys.agent_events(agent_id): last_id}, count=READ_COUNT, block=block_ms
        )
        events: list[Event] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                decoded = {_text(k): _text(v) for k, v in fields.items()}
                try:
                    data = json.loads(decoded.get("data", "{}"))
                except json.JSONDecodeError:
                    data = {}
                events.append(
                    Event(
                        id=_text(entry_id),
                        type=decoded.get("type", "message"),
                        data=data if isinstance(data, dict) else {"value": data},
                    )
                )
        return events

    # --- open streams, per user -------------------------------------------------------------

    async def claim_stream(self, user_id: str, stream_id: str, *, cap: int, ttl_s: float) -> bool:
        """Take one of the user's `cap` places for an open stream, for `ttl_s` unless kept.

        Counts the streams of every web process. Places whose deadline passed are freed first,
        so a crashed process's streams stop counting `ttl_s` after their last heartbeat.
        Idempotent on `stream_id` (a second claim renews it). False when the cap is reached.
        """
        taken = await self._claim(
            keys=[keys.event_streams(user_id)], args=[stream_id, cap, _ms(ttl_s)]
        )
        return bool(taken)

    async def keep_stream(self, user_id: str, stream_id: str, *, ttl_s: float) -> bool:
        """Heartbeat: hold the stream's place `ttl_s` longer. False when it no longer has one
        (it missed its deadline and was dropped): the stream should end."""
        kept = await self._keep(keys=[keys.event_streams(user_id)], args=[stream_id, _ms(ttl_s)])
        return bool(kept)

    async def release_stream(self, user_id: str, stream_id: str) -> None:
        """Give the stream's place back. Idempotent."""
        await self._redis.zrem(keys.event_streams(user_id), stream_id)

    async def open_streams(self, user_id: str) -> int:
        """How many places the user's streams hold now (expired ones not counted)."""
        now_ms = await self._now_ms()
        return int(await self._redis.zcount(keys.event_streams(user_id), f"({now_ms}", "+inf"))

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
