"""A job queued while every worker is down for longer than arq's 24-hour default still runs.

Nobody waits 25 hours: the test ages Redis instead, the way arq would see 25 hours go by.
arq notices time in three places, and `fast_forward` moves each of them:

- a job's key expires (its TTL, `PSETEX` at enqueue): every key's TTL shrinks by the jump,
  and a key whose TTL runs out is deleted, as Redis would have expired it;
- a job is due at its queue score (epoch ms): scores move back by the jump;
- a job carries its enqueue time (`et`, epoch ms): it moves back by the jump.

Run once with `DESKLINE_JOB_EXPIRES_S=86400` (arq's default) and once with deskline's default
(8 days): the message is lost in the first run and processed in the second, so the setting is
what keeps it.
"""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis
from arq.constants import default_queue_name, job_key_prefix

from bot.simulate import build_payload
from storage import keys
from tests.faults.harness import OPEN, Cluster, customer, drained, report, tickets, until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

DOWN_S = 25 * 3600  # longer than arq's default expiry (24 h)
ARQ_DEFAULT_EXPIRES_S = 86_400


async def fast_forward(r: aioredis.Redis, seconds: int) -> dict[str, int]:
    """Age every key and every queued job by `seconds`, as that much time passing would."""
    delta_ms = seconds * 1000
    expired = aged = 0
    async for key in r.scan_iter(count=1000):
        ttl_ms = await r.pttl(key)
        if ttl_ms < 0:
            continue  # no TTL (or already gone)
        if ttl_ms <= delta_ms:
            await r.delete(key)
            expired += 1
        else:
            await r.pexpire(key, ttl_ms - delta_ms)
            aged += 1
    for job_id, score in await r.zrange(default_queue_name, 0, -1, withscores=True):
        await r.zadd(default_queue_name, {job_id: score - delta_ms})
        job_key = job_key_prefix + job_id.decode()
        raw = await r.get(job_key)
        if raw is not None:
            job = json.loads(raw)
            job["et"] -= delta_ms
            await r.set(job_key, json.dumps(job, separators=(",", ":")), keepttl=True)
    return {"expired": expired, "aged": aged}


@pytest.mark.parametrize(
    ("job_expires_s", "kept"),
    [(ARQ_DEFAULT_EXPIRES_S, False), (None, True)],
    ids=["arq_default_24h_loses_it", "deskline_8_days_keeps_it"],
)
async def test_a_message_queued_while_workers_are_down_25_hours_is_still_processed(
    cluster: Cluster, direct: aioredis.Redis, job_expires_s: int | None, kept: bool
) -> None:
    overrides = {} if job_expires_s is None else {"job_expires_s": job_expires_s}
    await cluster.start_web(**overrides)
    await cluster.setup_numbers()
    wa_id, wamid = customer(600), "wamid.EXPIRY1"
    # The customer wrote 25 hours ago: the webhook was acknowledged then, and no worker ran
    # since (the message's own timestamp says when, as Meta's does).
    payload = build_payload(
        phone_number_id=OPEN,
        wa_id=wa_id,
        name="Cliente",
        text="Oi",
        message_id=wamid,
        timestamp=int(time.time()) - DOWN_S,
    )
    assert (await cluster.post_webhook(payload))[0] == 200
    job_key = job_key_prefix + f"inbound:{wamid}"
    ttl_s = await direct.ttl(job_key)
    aged = await fast_forward(direct, DOWN_S)
    job_left = await direct.exists(job_key)

    await cluster.start_worker(**overrides)
    await until(lambda: drained(direct), within=30, what="the queue drained")
    on_timeline = await direct.zscore(keys.timeline(OPEN, wa_id), wamid)
    desk = await tickets(direct, OPEN)
    assert await direct.exists(keys.inbound(wamid)), "the claim (8 days) must outlive 25 h"
    if kept:
        assert job_left
        assert on_timeline is not None
        assert len(desk) == 1
    else:
        # The control: with arq's default, the job key expired and the message is lost for
        # good, since its claim makes every redelivery a duplicate.
        assert not job_left
        assert on_timeline is None
        assert desk == {}
    report(
        f"job_expiry[{'8d' if job_expires_s is None else '24h'}]",
        worker_down_h=DOWN_S // 3600,
        job_ttl_at_enqueue_h=round(ttl_s / 3600, 1),
        keys_expired_by_jump=aged["expired"],
        posted=1,
        stored=int(on_timeline is not None),
        lost=int(on_timeline is None),
    )
