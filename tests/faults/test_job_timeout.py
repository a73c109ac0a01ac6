"""A job that overruns its timeout (here: a Graph API that hangs longer than the job may run)
is a failure deskline records, never a job that silently disappears."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from storage import keys
from tests.faults.harness import (
    CLOSED,
    Cluster,
    customer,
    dead_letters,
    drained,
    message,
    report,
    until,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]


async def test_a_job_cut_off_by_its_timeout_is_dead_lettered_and_replayable(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    graph = cluster.graph
    graph.delay_s = 4.0  # Meta hangs: longer than the job may run, shorter than the HTTP timeout
    await cluster.start_web()
    await cluster.setup_numbers()
    wa_id, wamid = customer(900), "wamid.SLOW"
    assert (await cluster.post_webhook(message(CLOSED, wa_id, wamid)))[0] == 200
    await cluster.start_worker(job_timeout_s=2, graph_timeout_s=10, graph_retry_attempts=1)

    job_id = f"reply:{wamid}:after_hours"

    async def buried() -> bool:
        return any(e["id"] == job_id for e in await dead_letters(direct))

    await until(buried, within=30, what="the timed-out send in the dead letters")
    [entry] = await dead_letters(direct)
    assert "Timeout" in entry["error"]
    await until(lambda: drained(direct), within=30, what="the queue drained")
    # The claim of the cut-off run is released: a replay may send at once.
    assert not await direct.exists(keys.send_claim(f"{wamid}:after_hours"))
    graph.delay_s = 0
    replayed = await cluster.run_cli("dead-letters", "retry", job_id)
    assert replayed.returncode == 0, replayed.stderr
    await until(lambda: len(graph.accepted) >= 2, within=30, what="the replayed send")
    await until(lambda: drained(direct), within=30, what="the queue drained")
    # Meta took the cut-off request as well (it hung, then answered): that is the crash window
    # of a send, so the reply went out twice, and the dead letter said so.
    assert graph.accepted_per_key() == {f"+{wa_id}|text|We are closed.": 2}
    report(
        "job_timeout",
        timed_out_jobs=1,
        dead_lettered=1,
        replayed=1,
        replies_sent=len(graph.accepted),
    )
