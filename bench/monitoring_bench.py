"""`GET /api/v1/monitoring` with 100,000 tickets stored: `python bench/monitoring_bench.py`.

Loads a desk of 4 numbers (São Paulo schedule with a lunch break) and 40 agents:

* `--today` tickets (default 5,000) go through the real `TicketsStore` scripts at realistic
  times of today (opened, routed, answered, closed, some lost, some left waiting or in
  service), so today's counters, queues and detail lists are the ones production keeps;
* the rest, up to `--tickets` (default 100,000), are closed tickets of the previous 90 days,
  written with pipelined commands into the same structures the scripts maintain (ticket
  hashes, the per-number, per-agent and per-outcome indexes, the per-day counters).

Then times, over `--runs` requests each, the computation (`MonitoringStore.snapshots` plus
`build_monitoring`, all numbers) and the endpoint over HTTP on localhost (admin, all numbers,
and one number; client and server share this process, so its CPU counts both). Target: under
50 ms. Wall-clock figures include whatever else the machine runs; the CPU per call does not.
Uses `--redis-url` when given, else an embedded Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.app import create_app
from bot.domain.clock import FixedClock
from bot.domain.config import AgentInput
from bot.domain.monitoring import build_monitoring, day_start
from bot.domain.tickets import TicketRequest
from bot.runtime.embedded import EmbeddedRedis
from bot.runtime.logs import configure_logging
from bot.settings import Settings
from storage import Stores, keys

NUMBERS = [f"55110000000{i}" for i in range(4)]
AGENTS_PER_NUMBER = 10
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 -- a local benchmark's token
WORKDAY = [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
SETTINGS = {
    "timezone": "America/Sao_Paulo",
    "service_hours": {"weekly": {d: WORKDAY for d in ("mon", "tue", "wed", "thu", "fri")}},
}
# Read at 17:30 in São Paulo on a Thursday: a full day of counters behind.
NOW = datetime(2026, 3, 5, 20, 30, tzinfo=UTC)
DAY_MS = 86_400_000


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def setup_desk(stores: Stores) -> list[str]:
    agents = []
    for n, number in enumerate(NUMBERS):
        await stores.numbers.put(number, SETTINGS, actor="bench", at=NOW - timedelta(days=100))
        for a in range(AGENTS_PER_NUMBER):
            agent_id = f"agent{n}_{a}"
            agents.append(agent_id)
            await stores.agents.put(
                agent_id, AgentInput(name=agent_id, numbers=(number,), slots=3), at=NOW
            )
    return agents


async def load_history(redis: Redis, count: int, agents: list[str]) -> None:
    """Closed tickets of the 90 days before today, written as the scripts would leave them."""
    rng = random.Random(1)
    start = ms(day_start_utc(NOW) - timedelta(days=90))
    span = ms(day_start_utc(NOW)) - start
    chunk = 5000
    for first in range(0, count, chunk):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(first, min(first + chunk, count)):
                n = i % len(NUMBERS)
                pnid = NUMBERS[n]
                agent = agents[n * AGENTS_PER_NUMBER + rng.randrange(AGENTS_PER_NUMBER)]
                created = start + rng.randrange(span)
                assigned = created + rng.randrange(60_000, 900_000)
                answered = assigned + rng.randrange(30_000, 600_000)
                closed = answered + rng.randrange(300_000, 3_600_000)
                ticket_id = f"T{i:010d}h{n:05x}"
                contact = f"5511{9 * 10**8 + i:09d}"
                pipe.hset(
                    keys.ticket(ticket_id),
                    mapping={
                        "id": ticket_id,
                        "phone_number_id": pnid,
                        "contact": contact,
                        "wa_id": contact,
                        "name": f"Cliente {i}",
                        "natural_key": f"wamid.h{i}",
                        "status": "closed",
                        "agent_id": agent,
                        "created_at": created,
                        "queued_at": created,
                        "assigned_at": assigned,
                        "first_assigned_at": assigned,
                        "first_response_at": answered,
                        "closed_at": closed,
                        "closed_by": "agent",
                    },
                )
                pipe.expire(keys.ticket(ticket_id), keys.TICKET_TTL_S)
                pipe.zadd(keys.tickets_all(pnid), {ticket_id: created})
                pipe.zadd(keys.tickets_by_agent(pnid, agent), {ticket_id: created})
                pipe.zadd(keys.tickets_by_outcome(pnid, "closed"), {ticket_id: created})
                for at, metric, by in (
                    (created, "s:closed", 1),
                    (answered, "fr", 1),
                    (answered, "frms", answered - assigned),
                    (answered, "frbms", answered - assigned),
                    (answered, "rs", 1),
                    (answered, "rsms", answered - assigned),
                    (answered, "rsbms", answered - assigned),
                    (closed, "sv", 1),
                    (closed, "svms", closed - assigned),
                    (closed, "svbms", closed - assigned),
                    (closed, f"ac:{agent}", 1),
                ):
                    bucket = at // keys.MONITOR_BUCKET_MS
                    day = keys.monitor_day(pnid, at // DAY_MS)
                    pipe.hincrby(day, f"{metric}:{bucket}", by)
                    pipe.expire(day, keys.MONITOR_DAY_TTL_S)
            await pipe.execute()


def day_start_utc(now: datetime) -> datetime:
    return day_start(ZoneInfo(SETTINGS["timezone"]), now)


async def load_today(stores: Stores, count: int, agents: list[str]) -> None:
    """Today's tickets through the real scripts, in time order, from 09:00 local."""
    tickets = stores.tickets
    rng = random.Random(2)
    opening = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    for agent_id in agents:
        status = rng.choices(["online", "break", "invisible"], [8, 1, 1])[0]
        if status != "invisible":
            await stores.agents.set_status(agent_id, status, at=opening)
    step = (NOW - opening) / count
    to_answer: list[tuple[str, str]] = []
    answered: list[tuple[str, str]] = []
    wave = 50
    for first in range(0, count, wave):
        at = opening + step * first
        opened = await asyncio.gather(
            *(
                tickets.open_or_attach(
                    TicketRequest(
                        phone_number_id=NUMBERS[i % len(NUMBERS)],
                        contact=f"5521{9 * 10**8 + i:09d}",
                        wa_id=f"5521{9 * 10**8 + i:09d}",
                        name=f"Cliente de hoje {i}",
                        natural_key=f"wamid.t{i}",
                        wamid=f"wamid.t{i}",
                        at=at,
                    ),
                    now=at,
                )
                for i in range(first, min(first + wave, count))
            )
        )
        to_answer += [(o.ticket_id, o.agent_id) for o in opened if o.agent_id]
        later = at + step * wave / 2
        # Close most of what was answered a wave ago: the freed slots pull waiting tickets.
        closing, answered = answered, []
        for ticket_id, agent_id in closing:
            if rng.random() < 0.9:
                routed = await tickets.close(ticket_id, by="agent", actor=agent_id, now=later)
                to_answer += [(r.ticket_id, r.agent_id) for r in routed]
            else:
                answered.append((ticket_id, agent_id))
        # Answer most of what the agents hold; a few stay waiting for their first reply.
        pending, to_answer = to_answer, []
        for ticket_id, agent_id in pending:
            if rng.random() < 0.95:
                await tickets.record_reply(
                    ticket_id, agent_id, f"agent:{ticket_id}", "Olá!", now=later
                )
                answered.append((ticket_id, agent_id))
    for pnid in NUMBERS:
        await tickets.expire_waiting(pnid, idle_before=NOW - timedelta(minutes=40), now=NOW)


async def redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def timed(
    call: Callable[[], Awaitable[Any]], runs: int, redis: Redis
) -> tuple[list[float], float, float]:
    """Wall-clock samples (ms), and the CPU per call (ms) of this process and of Redis: on a
    shared machine the wall clock also measures the neighbours, the CPU does not."""
    await call()  # warm: scripts, parsed settings, compiled schedules
    out = []
    cpu, server = time.process_time(), await redis_cpu(redis)
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    cpu = (time.process_time() - cpu) * 1000 / runs
    server = (await redis_cpu(redis) - server) * 1000 / runs
    return out, cpu, server


def report(name: str, measured: tuple[list[float], float, float]) -> None:
    samples, cpu, server = sorted(measured[0]), measured[1], measured[2]
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"{name:<44} median {statistics.median(samples):6.2f} ms   p95 {p95:6.2f} ms"
        f"   max {samples[-1]:6.2f} ms   CPU/call: python {cpu:5.2f} ms, redis {server:5.2f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="deskline-bench-") as tmp:
        server = None
        url = args.redis_url
        if url is None:
            server = EmbeddedRedis(data_dir=Path(tmp), persistent=False)
            server.start()
            url = server.url
        redis = Redis.from_url(url)
        try:
            await redis.flushdb()
            stores = Stores.on(redis)
            agents = await setup_desk(stores)
            started = time.perf_counter()
            await load_history(redis, args.tickets - args.today, agents)
            history_s = time.perf_counter() - started
            started = time.perf_counter()
            await load_today(stores, args.today, agents)
            today_s = time.perf_counter() - started
            stored = sum([int(await redis.zcard(keys.tickets_all(n))) for n in NUMBERS])
            print(
                f"loaded {stored} tickets ({args.tickets - args.today} historic, pipelined, "
                f"in {history_s:.1f} s; {args.today} today through the scripts in "
                f"{today_s:.1f} s); {await redis.dbsize()} keys"
            )

            configs = {s.phone_number_id: s.config for s in await stores.numbers.get_many(NUMBERS)}

            async def compute() -> Any:
                snaps = await stores.monitoring.snapshots(
                    [(p, day_start(c.zone, NOW)) for p, c in configs.items()], now=NOW
                )
                return build_monitoring(snaps, configs, NOW)

            answer = await compute()
            print("today (all numbers):", json.dumps(answer.total.today.model_dump()))
            details = sum(len(n.details.queue) + len(n.details.in_service) for n in answer.numbers)
            print(
                f"queue {answer.total.queue.tickets}, in service {answer.total.in_service}, "
                f"first replies today {answer.total.first_response.count}, "
                f"detail items {details}"
            )
            report("computation (4 numbers, in process)", await timed(compute, args.runs, redis))

            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                redis_url=url,
                admin_token=ADMIN_TOKEN,
                app_secret="bench",  # noqa: S106 -- a local benchmark's secret
                verify_token="bench",  # noqa: S106 -- a local benchmark's token
                log_level="WARNING",
            )
            runner = web.AppRunner(create_app(settings, clock=FixedClock(NOW)))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            try:
                async with aiohttp.ClientSession(headers=headers) as http:

                    async def get(path: str) -> None:
                        async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                            assert resp.status == 200, await resp.text()
                            await resp.read()

                    report(
                        "GET /api/v1/monitoring (all 4 numbers, HTTP)",
                        await timed(lambda: get("/api/v1/monitoring"), args.runs, redis),
                    )
                    report(
                        "GET /api/v1/monitoring?number= (one, HTTP)",
                        await timed(
                            lambda: get(f"/api/v1/monitoring?number={NUMBERS[0]}"), args.runs, redis
                        ),
                    )
            finally:
                await runner.cleanup()
        finally:
            await redis.aclose()
            if server is not None:
                server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--today", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))
