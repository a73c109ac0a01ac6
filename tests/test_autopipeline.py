"""bot.runtime.autopipeline: concurrent single commands share round trips, and callers see no
change."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bot.runtime.autopipeline import AutoPipelineRedis


@pytest.fixture(name="auto")
async def fixture_auto(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[AutoPipelineRedis]:
    # `redis` first: it flushes the test DB.
    client = AutoPipelineRedis(aioredis.ConnectionPool.from_url(redis_url))
    try:
        yield client
    finally:
        await client.aclose(close_connection_pool=True)


async def test_concurrent_commands_share_round_trips_and_get_their_own_replies(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    await asyncio.gather(*(auto.set(f"k{i}", i) for i in range(200)))
    values = await asyncio.gather(*(auto.get(f"k{i}") for i in range(200)))

    assert values == [str(i).encode() for i in range(200)]
    assert await redis.get("k199") == b"199"
    # 400 commands issued in two bursts: a handful of round trips, not 400.
    assert auto.commands_sent == 400
    assert auto.round_trips <= 6


async def test_an_idle_client_sends_a_lone_command_at_once(auto: AutoPipelineRedis) -> None:
    assert await asyncio.wait_for(auto.ping(), timeout=1) is True
    assert auto.round_trips == 1


async def test_response_callbacks_apply_as_for_a_plain_client(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    await redis.hset("h", mapping={"a": "1"})
    await redis.zadd("z", {"m": 2.5})
    hash_, nx_first, nx_again, scored, missing = await asyncio.gather(
        auto.hgetall("h"),
        auto.set("n", "x", nx=True),
        auto.set("h", "x", nx=True),
        auto.zrange("z", 0, -1, withscores=True),
        auto.get("nothing"),
    )
    assert hash_ == {b"a": b"1"}
    assert nx_first is True
    assert nx_again is None
    assert scored == [(b"m", 2.5)]
    assert missing is None


async def test_an_error_reply_fails_only_its_own_command(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    await redis.set("text", "not a number")
    results = await asyncio.gather(
        auto.incr("counter"),
        auto.incr("text"),
        auto.lpush("text", "x"),
        auto.get("text"),
        return_exceptions=True,
    )
    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
    assert "not an integer" in str(results[1])
    assert isinstance(results[2], ResponseError)
    assert "WRONGTYPE" in str(results[2])
    assert results[3] == b"not a number"


async def test_scripts_reload_after_the_server_forgot_them(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    script = auto.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await script(keys=["s"], args=[2]) == 2
    await redis.script_flush()
    # Every caller of the batch meets NOSCRIPT, and each reloads and runs its own call once.
    assert sorted(await asyncio.gather(*(script(keys=["s"], args=[1]) for _ in range(5)))) == [
        3, 4, 5, 6, 7,
    ]  # fmt: skip
    assert await redis.get("s") == b"7"


async def test_a_lost_connection_fails_every_waiting_caller_and_the_client_recovers(
    redis: aioredis.Redis,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AutoPipelineRedis(aioredis.ConnectionPool.from_url(f"redis://127.0.0.1:{port}/0"))
    try:
        results = await asyncio.gather(
            *(client.get(f"k{i}") for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, (RedisConnectionError, OSError)) for r in results)
        # Nothing is left queued, and the next call is tried afresh (and fails the same way).
        with pytest.raises((RedisConnectionError, OSError)):
            await asyncio.wait_for(client.get("again"), timeout=5)
    finally:
        await client.aclose(close_connection_pool=True)


async def test_a_cancelled_caller_leaves_the_others_served(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    await redis.set("k", "v")
    doomed = asyncio.ensure_future(auto.get("k"))
    others = [asyncio.ensure_future(auto.get("k")) for _ in range(10)]
    doomed.cancel()
    assert await asyncio.gather(*others) == [b"v"] * 10
    assert doomed.cancelled()
    assert await asyncio.wait_for(auto.get("k"), timeout=1) == b"v"


async def test_blocking_commands_bypass_the_queue(auto: AutoPipelineRedis) -> None:
    blocked = asyncio.ensure_future(auto.blpop(["empty-list"], timeout=2))
    await asyncio.sleep(0.05)
    # Were BLPOP in the shared round trip, this would wait for its 2 s timeout.
    assert await asyncio.wait_for(auto.set("k", "v"), timeout=0.5) is True
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked


async def test_transactions_keep_their_own_connection(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    async with auto.pipeline(transaction=True) as pipe:
        await pipe.watch("w")
        current = await pipe.get("w")
        pipe.multi()
        pipe.set("w", (int(current or 0) + 1))
        concurrent = asyncio.gather(*(auto.incr("other") for _ in range(10)))
        assert await pipe.execute() == [True]
        await concurrent
    assert await redis.get("w") == b"1"
    assert await redis.get("other") == b"10"


async def test_pipelines_and_transactions_share_the_round_trip_with_their_own_replies(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    await redis.set("text", "x")

    async def transaction(i: int) -> list[object]:
        async with auto.pipeline(transaction=True) as pipe:
            pipe.incr(f"t{i}")
            pipe.expire(f"t{i}", 60)
            pipe.hset(f"h{i}", "f", i)
            pipe.hgetall(f"h{i}")
            return await pipe.execute()  # type: ignore[no-any-return]

    async def plain(i: int) -> list[object]:
        pipe = auto.pipeline(transaction=False)
        pipe.get("text")
        pipe.incr("text")  # an error reply inside a plain pipeline
        pipe.set(f"p{i}", i, nx=True)
        return await pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    before = auto.round_trips
    results = await asyncio.gather(
        *(transaction(i) for i in range(20)), *(plain(i) for i in range(20)), auto.get("text")
    )
    for i, reply in enumerate(results[:20]):
        assert reply == [1, True, 1, {b"f": str(i).encode()}]
    for reply in results[20:40]:
        assert isinstance(reply, list)
        assert reply[0] == b"x"
        assert isinstance(reply[1], ResponseError)
        assert reply[2] is True
    assert results[40] == b"x"
    assert auto.round_trips - before <= 3
    assert await redis.ttl("t3") > 0


async def test_a_pipeline_raises_its_first_error_by_default(auto: AutoPipelineRedis) -> None:
    await auto.set("text", "x")
    pipe = auto.pipeline(transaction=False)
    pipe.set("a", 1)
    pipe.incr("text")
    with pytest.raises(ResponseError, match="not an integer"):
        await pipe.execute()
    assert await auto.get("a") == b"1"


async def test_an_aborted_transaction_fails_only_its_own_caller(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    async def aborted() -> None:
        async with auto.pipeline(transaction=True) as pipe:
            pipe.set("never", 1)
            pipe.execute_command("NOSUCHCOMMAND")  # refused while queueing: EXECABORT
            await pipe.execute()

    results = await asyncio.gather(aborted(), auto.set("k", "v"), return_exceptions=True)
    assert isinstance(results[0], ResponseError)
    assert results[1] is True
    assert await redis.exists("never") == 0


# Keeps Redis busy for ARGV[1] ms, so that a round trip is surely in flight meanwhile.
# Keeps Redis busy for roughly ARGV[1] ms of arithmetic. Not a TIME loop: Redis 7+ and Valkey
# freeze TIME while a script runs, so such a loop never ends there.
BUSY_LUA = """
local x = 0
for i = 1, tonumber(ARGV[1]) * 100000 do x = x + i end
return 1
"""


async def test_a_flusher_cancelled_mid_round_trip_fails_its_callers_and_poisons_nothing(
    auto: AutoPipelineRedis, redis: aioredis.Redis
) -> None:
    busy = auto.register_script(BUSY_LUA)
    await busy(args=[1])  # loaded: the next call is a single EVALSHA
    await redis.set("k", "v")
    in_flight = [asyncio.ensure_future(busy(args=[200]))]
    in_flight += [asyncio.ensure_future(auto.get("k")) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert auto._flusher is not None
    auto._flusher.cancel()
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    # The replies left unread on that connection must never be read as these calls' replies.
    assert await asyncio.wait_for(auto.get("k"), timeout=2) == b"v"
    assert await asyncio.wait_for(auto.incr("n"), timeout=2) == 1
