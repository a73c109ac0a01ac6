"""Event fan-out: what 50 open agent streams and 100 messages/s cost the web process.

`python -m bench.fanout [--idle-s 10] [--load-s 30] [--agents 50] [--rate 100]`

One private Redis (persistence off) and one real `python -m bot web` on loopback. The bench
creates a number and `--agents` agents on it (each with a token) through the API, opens one
SSE stream per agent (`GET /api/v1/agents/{id}/events`, `Accept: text/event-stream`), then:

1. idle: the streams open, nothing published (the cost of polling: one XREAD per stream per
   `handlers.sse.POLL_S`, plus a caller recheck every `stream_recheck_s`);
2. unicast: `--rate` messages/s, each one `message.in` to its holding agent (round robin) and
   three `message.status` events to the same agent (4 events per message);
3. broadcast: the same, plus a `ticket.waiting` to every agent (`publish_once`, one script) for
   10 % of the messages.

Events go into Redis through `storage.events.EventsStore` (as the jobs publish them), and
every event the streams should deliver is counted on arrival: a missing one fails the run.
For each phase: CPU of the web process (/proc/<pid>/stat utime+stime) and of Redis (INFO cpu),
as a share of one core, and the machine's load average (other engineers share it). Stops by
itself (about 20 s more than the phases add up to).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.run import cpu_seconds, log
from bot.runtime.embedded import EmbeddedRedis, free_port
from storage.events import EventsStore

ROOT = Path(__file__).resolve().parent.parent
PNID = "100000000000001"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 -- a private, throwaway server
SECRET = "bench-app-secret"  # noqa: S105 -- never used to sign anything here
NUMBER: dict[str, Any] = {
    "display_name": "Bench",
    "timezone": "America/Sao_Paulo",
    "language": "pt-BR",
    "service_hours": {"always_open": True},
}
STATUSES = ("sent", "delivered", "read")
BROADCAST_EVERY = 10  # one message in ten makes a waiting ticket that every agent sees
WANTED = frozenset({"message.in", "message.status", "ticket.waiting"})


@dataclass
class Phase:
    name: str
    seconds: float
    web_cpu_s: float
    redis_cpu_s: float
    bench_cpu_s: float
    messages: int
    events_expected: int
    events_received: int
    load_before: str
    load_after: str

    def row(self) -> str:
        web = self.web_cpu_s / self.seconds
        red = self.redis_cpu_s / self.seconds
        own = self.bench_cpu_s / self.seconds
        per_event = (
            f"{1e6 * (self.web_cpu_s / self.events_received):.0f} us"
            if self.events_received
            else "-"
        )
        return (
            f"| {self.name} | {self.seconds:.1f} | {self.messages / self.seconds:.0f} | "
            f"{self.events_received / self.seconds:.0f} | {self.events_received}/"
            f"{self.events_expected} | {web:.3f} ({100 * web:.1f} %) | {per_event} | "
            f"{red:.3f} ({100 * red:.1f} %) | {own:.3f} | {self.load_before} -> "
            f"{self.load_after} |"
        )


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def redis_cpu_s(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class Streams:
    """One SSE follower per agent; counts the events each one received, by type."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.received: Counter[str] = Counter()  # agent id -> events of WANTED types
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, tokens: dict[str, str]) -> None:
        # One after another, as 50 browsers would rarely open in the same millisecond (the
        # failed-authentication limiter lets a burst of right tokens wait for slots anyway).
        for agent_id, token in tokens.items():
            ready = asyncio.get_running_loop().create_future()
            self.tasks.append(asyncio.create_task(self._follow(agent_id, token, ready)))
            await asyncio.wait_for(ready, 30)

    async def _follow(self, agent_id: str, token: str, ready: asyncio.Future[None]) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        url = f"{self.base}/api/v1/agents/{agent_id}/events"
        try:
            async with self.session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(
                        f"{agent_id}: stream refused {resp.status} {await resp.text()}"
                    )
                # The server took its cursor (latest id) before answering: from now on every
                # event published to this agent reaches this stream.
                ready.set_result(None)
                async for line in resp.content:
                    if line.startswith(b"event: ") and line[7:].strip().decode() in WANTED:
                        self.received[agent_id] += 1
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log(f"stream {agent_id} ended: {exc!r}")

    def total(self) -> int:
        return sum(self.received.values())

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def publish_messages(
    store: EventsStore, agents: list[str], rate: int, seconds: float, *, broadcast: bool, seq: int
) -> int:
    """Publish `rate` messages/s for `seconds` at fixed send times (open loop); the messages
    sent."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = int(rate * seconds)
    pending: set[asyncio.Task[int]] = set()

    async def one(n: int) -> int:
        agent = agents[n % len(agents)]
        wamid = f"wamid.bench{seq}.{n}"
        base = {"phone_number_id": PNID, "message_id": wamid, "contact": f"5511{n:09d}"}
        sent = 0
        await store.publish(agent, "message.in", {**base, "text": "olá, preciso de ajuda"})
        sent += 1
        for status in STATUSES:
            await store.publish(agent, "message.status", {**base, "status": status})
            sent += 1
        if broadcast and n % BROADCAST_EVERY == 0:
            sent += await store.publish_once(
                agents, "ticket.waiting", {**base, "ticket_id": f"t{seq}.{n}"},
                once_key=f"bench:{seq}:{n}",
            )  # fmt: skip
        return sent

    for n in range(total):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if len(pending) > 200:
            raise RuntimeError("the publisher fell behind (Redis too slow?)")
    await asyncio.gather(*list(pending))
    return total


async def measure(
    name: str,
    seconds: float,
    web_pid: int,
    client: aioredis.Redis,
    streams: Streams,
    work: Any,
) -> Phase:
    load_before = loadavg()
    received0 = streams.total()
    web0, redis0, own0 = cpu_seconds(web_pid), await redis_cpu_s(client), time.process_time()
    t0 = time.monotonic()
    messages, expected = 0, 0
    if work is None:
        await asyncio.sleep(seconds)
    else:
        messages, expected = await work
        # Wait for the streams to catch up (two polls are enough; allow a few more).
        deadline = time.monotonic() + 10
        while streams.total() - received0 < expected and time.monotonic() < deadline:  # noqa: ASYNC110 -- many readers count
            await asyncio.sleep(0.1)
    elapsed = time.monotonic() - t0
    return Phase(
        name=name,
        seconds=elapsed,
        web_cpu_s=cpu_seconds(web_pid) - web0,
        redis_cpu_s=await redis_cpu_s(client) - redis0,
        bench_cpu_s=time.process_time() - own0,
        messages=messages,
        events_expected=expected,
        events_received=streams.total() - received0,
        load_before=load_before,
        load_after=loadavg(),
    )


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="deskline-fanout-"))
    server = EmbeddedRedis(data_dir=workdir / "redis", persistent=False)
    server.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKLINE_")}
    env.update(
        REDIS_URL=server.url,
        HOST="127.0.0.1",
        PORT=str(port),
        DESKLINE_ADMIN_TOKEN=ADMIN_TOKEN,
        DESKLINE_APP_SECRET=SECRET,
        DESKLINE_LOG_LEVEL="WARNING",
        DESKLINE_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    log_path = workdir / "web.log"
    client = aioredis.Redis.from_url(server.url)
    web: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("ab") as out:
            web = subprocess.Popen(  # noqa: ASYNC220 -- fixed program, started once
                [sys.executable, "-m", "bot", "web"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, connect=10)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            deadline = time.monotonic() + 30
            while True:
                if web.poll() is not None:
                    raise RuntimeError(f"web exited:\n{log_path.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("web did not start")
                await asyncio.sleep(0.2)
            async with session.put(f"{base}/api/v1/numbers/{PNID}", json=NUMBER,
                                   headers=admin) as resp:  # fmt: skip
                if resp.status >= 300:
                    raise RuntimeError(f"number: {resp.status} {await resp.text()}")
            tokens: dict[str, str] = {}
            for i in range(args.agents):
                agent_id = f"agent{i:03d}"
                body = {"name": f"Agent {i}", "numbers": [PNID], "slots": 5, "role": "agent"}
                async with session.put(f"{base}/api/v1/agents/{agent_id}", json=body,
                                       headers=admin) as resp:  # fmt: skip
                    if resp.status >= 300:
                        raise RuntimeError(f"agent: {resp.status} {await resp.text()}")
                async with session.post(f"{base}/api/v1/agents/{agent_id}/tokens",
                                        headers=admin) as resp:  # fmt: skip
                    if resp.status >= 300:
                        raise RuntimeError(f"token: {resp.status} {await resp.text()}")
                    tokens[agent_id] = (await resp.json())["token"]
            streams = Streams(session, base)
            await streams.open(tokens)
            log(f"{len(tokens)} streams open; web pid {web.pid}")
            await asyncio.sleep(2)  # let the opening settle before the idle baseline
            store = EventsStore(client)
            agents = list(tokens)
            phases = [await measure("idle", args.idle_s, web.pid, client, streams, None)]
            log(f"idle done: {phases[-1].web_cpu_s:.2f} s CPU")
            for seq, (name, broadcast) in enumerate((("unicast", False), ("broadcast", True))):
                work = publish_and_count(store, agents, args.rate, args.load_s, broadcast, seq)
                phases.append(await measure(name, args.load_s, web.pid, client, streams, work))
                log(f"{name} done: {phases[-1].web_cpu_s:.2f} s CPU")
            await streams.close()
        print_report(args, phases)
        missing = sum(p.events_expected - p.events_received for p in phases)
        if missing:
            log(f"FAIL: {missing} events did not arrive (or arrived twice when negative)")
            return 1
        return 0
    finally:
        if web is not None and web.poll() is None:
            web.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(web.wait, 10)
            if web.poll() is None:
                web.kill()
        await client.aclose()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def publish_and_count(
    store: EventsStore, agents: list[str], rate: int, seconds: float, broadcast: bool, seq: int
) -> tuple[int, int]:
    messages = await publish_messages(store, agents, rate, seconds, broadcast=broadcast, seq=seq)
    waiting = len(range(0, messages, BROADCAST_EVERY)) if broadcast else 0
    return messages, 4 * messages + waiting * len(agents)


def print_report(args: argparse.Namespace, phases: list[Phase]) -> None:
    print(f"agents/streams: {args.agents}, rate: {args.rate} messages/s, cores: {os.cpu_count()}")
    print(
        "| phase | s | msg/s | events/s delivered | received/expected | web CPU, cores (% of "
        "one) | web CPU per event | Redis CPU, cores | bench CPU | loadavg before -> after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for phase in phases:
        print(phase.row())
    idle = phases[0].web_cpu_s / phases[0].seconds
    print(f"idle polling: {1e6 * idle / args.agents:.0f} us of web CPU per stream per second")
    for phase in phases[1:]:
        extra = phase.web_cpu_s / phase.seconds - idle
        rate = phase.events_received / phase.seconds
        print(
            f"{phase.name}: {1e6 * extra / rate:.0f} us of web CPU per delivered event above idle"
        )
    print(json.dumps([p.__dict__ for p in phases]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=int, default=100, help="messages per second")
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--load-s", type=float, default=30.0)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
