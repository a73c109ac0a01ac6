"""The Graph API answers 5xx, 429 and nothing at all for a while: replies wait, then leave
once each, in order per contact."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.worker import Worker

from bot.deps import open_deps
from bot.domain import bodies
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.runtime import queue
from bot.settings import Settings
from jobs import deps_key
from jobs.replies import send_reply
from storage import keys
from tests.faults.harness import (
    OPEN,
    Cluster,
    customer,
    dead_letters,
    drained,
    message,
    report,
    until,
)
from tests.graph_fake import FakeGraphAPI

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

CUSTOMERS = 8
AGENT_REPLIES = 3
# How long the Graph API stays broken once the first send reaches it.
OUTAGE_S = 8.0
REPLY_TRIES = 12  # send_reply's max_tries (jobs/__init__.py)
ABSENCE = {
    "enabled": True,
    "message": "Ana is away.",
    "suggested_agent": {"name": "Bia", "phone": "+5511999990000"},
}
ABSENCE_TEXT = "Ana is away.\n\nIf you prefer, talk to Bia: https://wa.me/5511999990000"


def expected_order(wa_id: str) -> list[str]:
    """What one customer must receive, in this order: the absence text and its contact card
    (queued by the rules, in that order), then the agent's replies as she typed them."""
    to = "+" + wa_id
    return [
        f"{to}|text|{ABSENCE_TEXT}",
        f"{to}|contacts|Bia",
        *(f"{to}|text|reply {n} to {wa_id}" for n in range(1, AGENT_REPLIES + 1)),
    ]


async def _agent(cluster: Cluster) -> dict[str, str]:
    """Ana, online on OPEN with room for every ticket; her Authorization header."""
    body = {"name": "Ana", "numbers": [OPEN], "slots": 20, "role": "agent"}
    status, answer = await cluster.api("PUT", "/agents/ana", body)
    assert status in (200, 201), answer
    status, answer = await cluster.api("POST", "/agents/ana/tokens")
    assert status in (200, 201), answer
    ana = {"Authorization": f"Bearer {answer['token']}"}
    status, answer = await cluster.api("PUT", "/agents/ana/status", {"status": "online"}, ana)
    assert status == 200, answer
    return ana


async def test_replies_wait_out_a_graph_outage_then_leave_once_in_order(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    graph = cluster.graph
    graph.faults = ["500", "429", "timeout"]
    graph.hang_s = 1.5  # longer than the workers' Graph timeout below
    graph.failing = True
    await cluster.start_web()
    number = {
        "timezone": "UTC",
        "language": "en",
        "service_hours": {"always_open": True},
        "absence": ABSENCE,
    }
    assert (await cluster.api("PUT", f"/numbers/{OPEN}", number))[0] in (200, 201)
    ana = await _agent(cluster)
    settings = {"graph_timeout_s": 1, "graph_retry_attempts": 2, "reply_retry_base_s": 0.5}
    for _ in range(2):
        await cluster.start_worker(**settings)
    wa_ids = [customer(500 + i) for i in range(CUSTOMERS)]
    for i, wa_id in enumerate(wa_ids):
        status, _ = await cluster.post_webhook(message(OPEN, wa_id, f"wamid.GO{i:03d}"))
        assert status == 200

    # Ana answers every customer three times while Meta is still down.
    tickets: dict[str, Any] = {}

    async def assigned() -> bool:
        status, page = await cluster.api("GET", f"/numbers/{OPEN}/tickets")
        assert status == 200, page
        tickets.update({t["contact"]["wa_id"]: t for t in page["items"] if t["agent_id"]})
        return len(tickets) == CUSTOMERS

    await until(assigned, within=30, what="tickets routed to ana")
    for n in range(1, AGENT_REPLIES + 1):
        for wa_id in wa_ids:
            status, answer = await cluster.api(
                "POST",
                f"/tickets/{tickets[wa_id]['id']}/messages",
                {"text": f"reply {n} to {wa_id}"},
                {**ana, "Idempotency-Key": f"r{n}"},
            )
            assert status == 202, answer

    await until(lambda: bool(graph.refused), within=30, what="sends reaching the Graph API")
    outage_started = time.monotonic()
    await asyncio.sleep(OUTAGE_S)
    graph.failing = False
    outage_s = time.monotonic() - outage_started

    total = CUSTOMERS * (2 + AGENT_REPLIES)

    async def all_sent() -> bool:
        return len(graph.accepted) >= total and await drained(direct)

    await until(all_sent, within=60, what="every reply sent after the outage")
    received: dict[str, list[str]] = defaultdict(list)
    for key, _ in graph.accepted:
        received[key.split("|")[0][1:]].append(key)
    out_of_order = [c for c in wa_ids if received[c] != expected_order(c)]
    assert not out_of_order, {c: received[c] for c in out_of_order}
    assert len(graph.accepted) == total, "a reply was sent twice"
    assert await dead_letters(direct) == []
    assert await direct.llen(keys.FAILED_SENDS) == 0
    # How close a reply came to being dead-lettered: a reply waiting behind an earlier one
    # spends its tries no faster than the earlier one retries (polling every second, the
    # last replies reached try 11 of 12 in this outage).
    tries: dict[str, int] = {}
    for worker in (c for c in cluster.children if c.role == "worker"):
        for event in worker.events():
            if event.get("logger") == "arq.worker" and "send_reply(" in event["event"]:
                job_id = event["job_id"]
                tries[job_id] = max(tries.get(job_id, 0), int(event["job_try"]))
    assert len(tries) == total
    assert max(tries.values()) <= REPLY_TRIES * 3 // 4, sorted(tries.values())
    report(
        "graph_outage",
        outage_s=round(outage_s, 1),
        refused_500=graph.refused["500"],
        refused_429=graph.refused["429"],
        timed_out=graph.refused["timeout"],
        replies_expected=total,
        replies_sent=len(graph.accepted),
        duplicated=len(graph.accepted) - len(set(k for k, _ in graph.accepted)),
        lost=total - len(set(k for k, _ in graph.accepted)),
        contacts_out_of_order=len(out_of_order),
        most_tries_used=f"{max(tries.values())}/{REPLY_TRIES}",
    )


async def test_a_later_reply_whose_job_runs_first_still_waits_its_turn(
    settings: Settings,  # on the test Redis, flushed
    graph: FakeGraphAPI,
    make_worker: Callable[..., Worker],
) -> None:
    """The order is taken when replies are queued, not when their jobs first run: two jobs of
    one contact start together, and the later one must not overtake (in-process, no fault)."""
    first, second = (
        ReplyRequest(
            natural_key=f"wamid.ORD:{n}",
            phone_number_id=OPEN,
            wa_id=customer(800),
            contact=customer(800),
            kind=ReplyKind.AGENT,
            body=bodies.text("+" + customer(800), n),
            free_form=False,
        )
        for n in ("first", "second")
    )
    async with open_deps(settings) as deps:
        assert await queue.enqueue_reply(deps.redis, first)
        assert await queue.enqueue_reply(deps.redis, second)
        # The second reply's job runs before the first one's has started.
        ctx = {deps_key: deps, "job_try": 1, "enqueue_time": datetime.now(UTC)}
        with pytest.raises(Retry):
            await send_reply(ctx, second.model_dump(mode="json"))
    assert graph.messages == []
    await make_worker().run_check()
    assert [m["text"]["body"] for m in graph.messages] == ["first", "second"]
