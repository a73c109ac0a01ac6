"""Redis goes away under load, or crashes with jobs queued: nothing acknowledged is lost.

Real processes (see conftest.py): the web server, a worker, a redis-server with an append-only
file. The test plays Meta: it floods the webhook, and resends every delivery that did not get a
200, as Meta does for days.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.constants import default_queue_name

from bot.app import create_app
from bot.runtime.embedded import EmbeddedRedis
from bot.settings import Settings
from storage import keys
from tests.faults.harness import (
    CLOSED,
    OPEN,
    Cluster,
    after_hours_messages,
    customer,
    dead_letters,
    drained,
    message,
    report,
    ticket_inbound_ids,
    tickets,
    timeline_ids,
    until,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

CUSTOMERS = 60
MESSAGES = 360
POSTERS = 12
# A webhook must be answered within this, whatever Redis does (redis_timeout_s is 1 s here).
ANSWER_WITHIN_S = 3.0
# Short, so that jobs of the worker that died are re-run soon (after timeout + 10 s), yet
# longer than a job may wait for its contact's lock (jobs.inbound.LOCK_WAIT_S, 2 s).
JOB_TIMEOUT_S = 4


async def test_webhooks_during_a_redis_outage_are_answered_503_or_200_and_stored_once(
    cluster: Cluster, aof_redis: EmbeddedRedis, direct: aioredis.Redis
) -> None:
    """A flood goes on while Redis first freezes (SIGSTOP), then crashes (SIGKILL) and comes
    back from its append-only file. Every POST is answered 200 or 503 within seconds; once the
    503s are redelivered, every message is on its contact's timeline and ticket exactly once."""
    await cluster.start_web()
    await cluster.setup_numbers()
    first_worker = await cluster.start_worker(job_timeout_s=JOB_TIMEOUT_S)
    wa_ids = [customer(i) for i in range(CUSTOMERS)]
    plan = [(f"wamid.FLOOD{n:04d}", wa_ids[n % CUSTOMERS]) for n in range(MESSAGES)]
    todo = list(reversed(plan))
    first_status: dict[str, int] = {}
    statuses: Counter[int] = Counter()
    slowest = 0.0

    async def poster() -> None:
        nonlocal slowest
        while todo:
            wamid, wa_id = todo.pop()
            status, seconds = await cluster.post_webhook(message(OPEN, wa_id, wamid, wamid))
            first_status[wamid] = status
            statuses[status] += 1
            slowest = max(slowest, seconds)
            await asyncio.sleep(0.01)  # a flood that lasts a few seconds, not one burst

    async def saboteur() -> None:
        assert aof_redis.process is not None
        pid = aof_redis.process.pid
        await until(lambda: len(first_status) >= MESSAGES // 4, within=30, what="flood")
        os.kill(pid, signal.SIGSTOP)  # Redis frozen: commands hang, nothing answers
        await asyncio.sleep(2.0)
        os.kill(pid, signal.SIGCONT)
        await until(lambda: len(first_status) >= MESSAGES // 2, within=30, what="flood")
        aof_redis.kill()  # Redis crashes
        await asyncio.sleep(1.5)
        aof_redis.start()  # and restarts from its append-only file, on the same port

    await asyncio.gather(saboteur(), *(poster() for _ in range(POSTERS)))
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, "the outage never showed: the test did not test anything"
    assert slowest < ANSWER_WITHIN_S, slowest

    # Meta redelivers whatever was not acknowledged.
    pending = [(w, c) for w, c in plan if first_status[w] != 200]
    redelivered = 0
    first_answers = len(cluster.answers)
    for _ in range(20):
        if not pending:
            break
        answers = await asyncio.gather(
            *(cluster.post_webhook(message(OPEN, c, w, w)) for w, c in pending)
        )
        redelivered += len(pending)
        pending = [p for p, (status, _) in zip(pending, answers, strict=True) if status != 200]
        await asyncio.sleep(0.2)
    assert not pending
    # A 503 does not mean "not stored": a script Redis ran after the client gave up (frozen,
    # then woken) stored its message, and its redelivery is recognised as a duplicate.
    stored_despite_503 = sum(
        json.loads(a)["duplicate"] for a in cluster.answers[first_answers:] if a.startswith(b'{"ok')
    )

    # A worker exits when its Redis vanishes (arq's poll loop does not survive a connection
    # error); its supervisor starts another. Its running jobs are picked up again once their
    # in-progress keys expire.
    worker_exited = not first_worker.alive()
    await cluster.start_worker(job_timeout_s=JOB_TIMEOUT_S)
    wamids = [w for w, _ in plan]

    async def all_stored() -> bool:
        on_timeline = await timeline_ids(direct, OPEN, wa_ids)
        return set(wamids) <= set(on_timeline) and await drained(direct)

    await until(all_stored, within=60, what="every message processed")
    claims = [await direct.exists(keys.inbound(w)) for w in wamids]
    on_timeline = await timeline_ids(direct, OPEN, wa_ids)
    desk = await tickets(direct, OPEN)
    on_tickets = await ticket_inbound_ids(direct, list(desk))
    per_contact = Counter(t["contact"] for t in desk.values())
    assert sum(claims) == MESSAGES
    assert all(on_timeline[w] == 1 for w in wamids)
    assert sorted(on_tickets) == sorted(wamids), "a message is missing from its ticket"
    assert max(on_tickets.values()) == 1, "a message was added to its ticket twice"
    assert sorted(per_contact) == sorted(wa_ids)
    assert max(per_contact.values()) == 1, "a contact got two tickets"
    assert await dead_letters(direct) == []
    report(
        "redis_outage_flood",
        posted=MESSAGES,
        answered_200=statuses[200],
        answered_503=statuses[503],
        other_status=sum(n for s, n in statuses.items() if s not in (200, 503)),
        slowest_answer_s=round(slowest, 2),
        redelivered=redelivered,
        redelivered_already_stored=stored_despite_503,
        stored=len(set(on_tickets)),
        duplicated=sum(n - 1 for n in on_tickets.values()),
        lost=MESSAGES - len(set(on_tickets)),
        worker_exited_on_redis_loss=worker_exited,
    )


async def test_jobs_queued_when_redis_crashes_survive_in_its_aof_and_run(
    cluster: Cluster, aof_redis: EmbeddedRedis, direct: aioredis.Redis
) -> None:
    """Messages acknowledged while no worker runs wait as jobs; Redis is killed (SIGKILL) and
    restarted from its append-only file; the jobs are all there, and a worker runs them."""
    await cluster.start_web()
    await cluster.setup_numbers()
    n = 20
    closed = [(f"wamid.AOFC{i:03d}", customer(100 + i)) for i in range(n)]
    opened = [(f"wamid.AOFO{i:03d}", customer(200 + i)) for i in range(n)]
    for pnid, batch in ((CLOSED, closed), (OPEN, opened)):
        for wamid, wa_id in batch:
            status, _ = await cluster.post_webhook(message(pnid, wa_id, wamid, wamid))
            assert status == 200
    queued = await direct.zcard(default_queue_name)
    assert queued == 2 * n

    aof_redis.kill()
    started = time.monotonic()
    aof_redis.start()
    restart_s = time.monotonic() - started
    assert await direct.zcard(default_queue_name) == 2 * n, "queued jobs did not survive"
    # The web process reconnects by itself, and its readiness carries no persistence warning.
    status, body = await cluster.api_root("GET", "/readyz")
    assert status == 200
    assert body["warnings"] == []

    await cluster.start_worker()
    await until(lambda: drained(direct), within=40, what="queued jobs run")
    rows = await after_hours_messages(direct, CLOSED)
    desk = await tickets(direct, OPEN)
    on_tickets = await ticket_inbound_ids(direct, list(desk))
    replies = cluster.graph.accepted_per_key()
    assert rows == {wa_id: 1 for _, wa_id in closed}
    assert sorted(on_tickets) == sorted(w for w, _ in opened)
    assert max(on_tickets.values()) == 1
    assert sorted(k.split("|")[0] for k in replies) == sorted("+" + c for _, c in closed)
    assert max(replies.values()) == 1
    assert await dead_letters(direct) == []
    report(
        "redis_aof_restart",
        posted=2 * n,
        queued_before_crash=queued,
        queued_after_restart=2 * n,
        restart_s=round(restart_s, 2),
        stored=sum(rows.values()) + len(on_tickets),
        replies_sent=sum(replies.values()),
        duplicated=sum(v - 1 for v in on_tickets.values()) + sum(v - 1 for v in replies.values()),
        lost=2 * n - sum(rows.values()) - len(on_tickets),
    )


@pytest.mark.parametrize(
    ("policy", "warned"),
    [("noeviction", False), ("allkeys-lru", True), ("volatile-ttl", True)],
)
async def test_readyz_warns_when_redis_may_evict_keys(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    policy: str,
    warned: bool,
) -> None:
    """The other setting deskline needs besides `appendonly yes` (whose warning
    tests/test_health.py checks): a Redis that evicts keys drops claims and queued jobs."""
    server = EmbeddedRedis(data_dir=tmp_path, persistent=True)
    server.start()
    try:
        admin = aioredis.Redis.from_url(server.url)
        await admin.config_set("maxmemory-policy", policy)
        await admin.aclose()
        client = await aiohttp_client(create_app(make_settings(redis_url=server.url)))
        body = await (await client.get("/readyz")).json()
        assert body["status"] == "ok"
        assert any("maxmemory-policy" in w for w in body["warnings"]) is warned
        assert len(body["warnings"]) == int(warned)  # AOF is on: no other warning
    finally:
        server.stop()
