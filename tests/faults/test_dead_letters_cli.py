"""Jobs that fail for good land in the dead letters; the operator's CLI, run as a real
process against the deployment's Redis, lists them and replays them once the cause is fixed."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from redis.asyncio import BlockingConnectionPool

from bot.runtime.queue import enqueue_replay, job_deserializer, job_serializer
from storage import keys
from tests.faults.harness import (
    CLOSED,
    OPEN,
    Cluster,
    customer,
    dead_letters,
    drained,
    message,
    report,
    tickets,
    until,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

REPLY_TRIES = 12  # send_reply's max_tries (jobs/__init__.py)


async def test_failing_jobs_are_dead_lettered_then_listed_and_replayed_by_the_cli(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    graph = cluster.graph
    graph.faults = ["500"]
    graph.failing = True  # Meta is down for longer than a reply's tries last
    await cluster.start_web()
    await cluster.setup_numbers()
    # A corrupted record: the contact's hash is a string, so processing the message fails.
    broken_wa, broken_wamid = customer(701), "wamid.DLBROKEN"
    await direct.set(keys.contact(OPEN, broken_wa), "corrupted")
    reply_wa, reply_wamid = customer(700), "wamid.DLREPLY"
    assert (await cluster.post_webhook(message(CLOSED, reply_wa, reply_wamid)))[0] == 200
    assert (await cluster.post_webhook(message(OPEN, broken_wa, broken_wamid)))[0] == 200
    await cluster.start_worker(graph_retry_attempts=1, reply_retry_base_s=0.002)

    expected = {f"reply:{reply_wamid}:after_hours", f"inbound:{broken_wamid}"}
    await until(lambda: _ids(direct, expected), within=60, what="both jobs in the dead letters")
    attempts = len(graph.requests)
    listed = await cluster.run_cli("dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    entries = {e["id"]: e for e in map(json.loads, listed.stdout.splitlines())}
    assert set(entries) == expected
    assert (
        entries[f"reply:{reply_wamid}:after_hours"]["error"] == f"gave up after {REPLY_TRIES} tries"
    )
    assert "WRONGTYPE" in entries[f"inbound:{broken_wamid}"]["error"]

    # The operator fixes both causes, then replays everything.
    graph.failing = False
    await direct.delete(keys.contact(OPEN, broken_wa))
    replayed = await cluster.run_cli("dead-letters", "retry", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert len(replayed.stdout.splitlines()) == 2

    async def recovered() -> bool:
        return len(graph.accepted) == 1 and len(await tickets(direct, OPEN)) == 1

    await until(recovered, within=30, what="the replayed jobs done")
    await until(lambda: drained(direct), within=30, what="the queue drained")
    assert await dead_letters(direct) == []
    assert (await cluster.run_cli("dead-letters", "list")).stdout == ""
    assert graph.accepted_per_key() == {f"+{reply_wa}|text|We are closed.": 1}
    assert await direct.zscore(keys.timeline(OPEN, broken_wa), broken_wamid) is not None
    report(
        "dead_letters",
        failing_jobs=2,
        dead_lettered=len(entries),
        graph_attempts_before_giving_up=attempts,
        replayed=len(replayed.stdout.splitlines()),
        replies_sent=len(graph.accepted),
        duplicated=len(graph.accepted) - len(graph.accepted_per_key()),
        lost=0 if len(graph.accepted) == 1 else 1,
    )


async def _ids(r: aioredis.Redis, expected: set[str]) -> bool:
    return {e["id"] for e in await dead_letters(r)} >= expected


async def test_a_replay_queued_by_the_cli_outlives_arqs_24_hour_default(
    redis: aioredis.Redis, redis_url: str
) -> None:
    """The CLI's client knows nothing of DESKLINE_JOB_EXPIRES_S: the replay sets its own."""
    arq_redis = ArqRedis(
        BlockingConnectionPool.from_url(redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )
    try:
        job_id = await enqueue_replay(
            arq_redis, {"id": "reply:x", "function": "send_reply", "args": [{}]}
        )
    finally:
        await arq_redis.aclose(close_connection_pool=True)
    assert await redis.pttl(job_key_prefix + job_id) > 7 * 24 * 3600 * 1000
