"""`make bench`: deskline's acknowledgement path and pipeline, side by side with a ceiling.

`python -m bench.run [--quick] [--probe reply|ticket|job] [--stages closed,open,e2e,memory,scale]
[--memory-probes reply,ticket] [--nice N]`

Stages, all against one private Redis (persistence off), flushed before every run:

1. ack, closed loop: wrk at 32 and 128 connections, single-message bodies and 50-message
   batches, for deskline, the ceiling (`bench/ceiling.py`) and pywa's async receiver when
   installed. Runs alternate between servers and repeat, and the deskline/ceiling ratio is the
   median of the per-round ratios, so that drift on a shared machine cancels out.
2. ack, open loop: 500 and 1,000 requests/s at fixed send times (`bench/openloop.py`).
3. end to end (one web, one worker): N messages at a fixed rate until every one is done (as
   the completion probe says), and receipt-to-done latency at 100 messages/s.
4. memory: a backlog posted with no worker (Redis bytes per queued message), then drained by
   one worker (its capacity, and bytes per processed message), once per memory probe (the
   after-hours/reply path and the ticket path by default, each on a flushed Redis), with bytes
   per key family and per entity (message, contact, after-hours row, reply, ticket); RSS of
   every process.
5. scale-out: end to end with 1 or 2 web and 1 or 2 worker processes.

Pinning: every server under test on core 0; wrk, the open-loop generator, Redis and this runner
on core 1. End-to-end stages leave web and worker free to use both cores (a worker is one
process; a web + worker pair is what one 2-vCPU machine runs) and report CPU per message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq.constants import default_queue_name as arq_queue_name

from bench import bodies
from bench.probes import PROBES, CompletionProbe
from bot.runtime.embedded import EmbeddedRedis, free_port
from storage import keys

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"  # noqa: S105 -- the bench signs its own bodies with it
PNID = "100000000000001"
SERVER_CPUS = "0"
LOAD_CPUS = "1"
ALL_CPUS = "0,1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Profile:
    name: str
    closed_s: int  # one wrk run
    warm_s: int  # a discarded wrk run before each measured one
    rounds: int  # deskline/ceiling alternations per closed-loop configuration
    open_s: float  # one open-loop run per rate
    sustained_rate: int
    sustained_s: float
    latency_rate: int
    latency_s: float
    backlog: int  # messages queued with no worker (memory, drain capacity)
    scale_rate: int
    scale_s: float
    single_pool: int
    batch_pool: int
    # Before each measured run, wait (up to this much in all) for other processes to go quiet.
    quiet_budget_s: float
    # End to end: how long after the last send to wait for the last message to be done (a
    # worker that cannot keep up would otherwise stretch the run; late ones count as problems).
    drain_limit_s: float


FULL = Profile("full", closed_s=4, warm_s=1, rounds=3, open_s=15, sustained_rate=500,
               sustained_s=60, latency_rate=100, latency_s=20, backlog=10_000, scale_rate=1_000,
               scale_s=4, single_pool=40_000, batch_pool=4_000, quiet_budget_s=45,
               drain_limit_s=30)  # fmt: skip
QUICK = Profile("quick", closed_s=1, warm_s=1, rounds=1, open_s=2, sustained_rate=500,
                sustained_s=4, latency_rate=100, latency_s=3, backlog=1_000, scale_rate=1_000,
                scale_s=1, single_pool=8_000, batch_pool=500, quiet_budget_s=5,
                drain_limit_s=10)  # fmt: skip


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _die_with_parent() -> None:
    # A killed runner must not leave servers behind (Linux: PR_SET_PDEATHSIG = 1).
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (every core, every process)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class Service:
    name: str
    role: str
    process: subprocess.Popen[bytes]
    port: int | None
    log_path: Path
    peak_rss_mb: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid


class Machine:
    """Tracks our long-lived children, their peak RSS, and CPU that is not ours (noise)."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self.redis_pid: int | None = None
        self._sampler: asyncio.Task[None] | None = None

    def live_pids(self) -> list[int]:
        pids = [s.pid for s in self.services if s.process.poll() is None]
        return pids + ([self.redis_pid] if self.redis_pid else [])

    def ours_s(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return total + sum(cpu_seconds(pid) for pid in self.live_pids())

    def snapshot(self) -> Snapshot:
        return Snapshot(
            time.monotonic(),
            machine_busy_s(),
            self.ours_s(),
            {s.pid: cpu_seconds(s.pid) for s in self.services if s.process.poll() is None},
        )

    async def _sample(self) -> None:
        while True:
            for service in self.services:
                if service.process.poll() is None:
                    service.peak_rss_mb = max(service.peak_rss_mb, rss_mb(service.pid))
            await asyncio.sleep(0.2)

    def start_sampling(self) -> None:
        self._sampler = asyncio.create_task(self._sample())

    async def stop_sampling(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler


@dataclass(frozen=True)
class Snapshot:
    at: float
    busy_s: float
    ours_s: float
    per_pid: dict[int, float]


@dataclass(frozen=True)
class Window:
    seconds: float
    foreign_cores: float  # CPU used by processes that are not this bench's, in cores
    cpu: dict[int, float]  # pid -> cores used over the window

    @staticmethod
    def between(a: Snapshot, b: Snapshot) -> Window:
        seconds = max(b.at - a.at, 1e-9)
        foreign = max(0.0, (b.busy_s - a.busy_s) - (b.ours_s - a.ours_s)) / seconds
        cpu = {pid: (b.per_pid.get(pid, 0.0) - start) / seconds for pid, start in a.per_pid.items()}
        return Window(seconds, foreign, cpu)


class Bench:
    def __init__(self, profile: Profile, workdir: Path, probe_name: str) -> None:
        self.profile = profile
        self.workdir = workdir
        self.probe_name = probe_name
        # The memory stage runs its backlog and drain once per probe here (`--memory-probes`).
        self.memory_probes: tuple[str, ...] = ("reply", "ticket")
        self.machine = Machine()
        self.redis_server = EmbeddedRedis(data_dir=workdir / "redis", persistent=False)
        self.redis: aioredis.Redis | None = None
        self.results: dict[str, Any] = {"profile": profile.name, "probe": probe_name}
        self.notes: list[str] = []
        self.peaks: dict[str, float] = {}  # role -> peak RSS (MB) of its stopped processes
        self.quiet_budget_s = profile.quiet_budget_s
        self.customers = bodies.CUSTOMERS  # distinct senders in the single-message pool

    @property
    def redis_url(self) -> str:
        return self.redis_server.url

    @property
    def client(self) -> aioredis.Redis:
        assert self.redis is not None
        return self.redis

    async def reset(self) -> None:
        """An empty Redis that serves the bench's number."""
        await self.client.flushall()
        await self.client.sadd(keys.NUMBERS, PNID)  # type: ignore[misc]

    def env(self, port: int | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESKLINE_")}
        env.update(
            REDIS_URL=self.redis_url,
            HOST="127.0.0.1",
            DESKLINE_APP_SECRET=SECRET,
            DESKLINE_LOG_LEVEL="WARNING",
            DESKLINE_LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        if port is not None:
            env["PORT"] = str(port)
        env.update(extra or {})
        return env

    async def start(
        self,
        name: str,
        role: str,
        argv: Sequence[str],
        cpus: str,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Service:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as out:
            # Popen returns at once; the child is only ever waited for off the loop (`stop`).
            process = subprocess.Popen(  # noqa: S603, ASYNC220 -- fixed programs
                ["taskset", "-c", cpus, sys.executable, *argv],  # noqa: S607 -- util-linux
                cwd=ROOT,
                env=env or self.env(port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # called from the loop thread: PDEATHSIG is per thread
            )
        service = Service(name, role, process, port, log_path)
        self.machine.services.append(service)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
            if port is not None:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    return service
            elif await self.client.exists("arq:queue:health-check"):
                return service  # an arq worker records its health as it starts polling
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{name} did not start in time (see {log_path})")

    async def stop(self, *services: Service) -> None:
        for service in services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGINT)
        for service in services:
            try:
                await asyncio.to_thread(service.process.wait, 15)
            except subprocess.TimeoutExpired:
                service.process.kill()
                await asyncio.to_thread(service.process.wait)
            if service in self.machine.services:
                self.machine.services.remove(service)
            self.peaks.setdefault(service.role, 0.0)
            self.peaks[service.role] = max(self.peaks[service.role], service.peak_rss_mb)

    async def wait_quiet(self, threshold_cores: float = 0.25, per_run_s: float = 15.0) -> None:
        """Wait until processes that are not the bench's use under `threshold_cores` (bounded).

        The machine may be shared (other test runs, builds): a run measured while they burn a
        core says little. Each measured run still reports the foreign load it actually saw.
        """
        waited = 0.0
        while self.quiet_budget_s > 0 and waited < per_run_s:
            before = self.machine.snapshot()
            await asyncio.sleep(0.5)
            foreign = Window.between(before, self.machine.snapshot()).foreign_cores
            if foreign < threshold_cores:
                break
            waited += 0.5
            self.quiet_budget_s -= 0.5
        if waited:
            log(f"waited {waited:.1f} s for foreign load to drop")

    async def redis_used_memory(self) -> int:
        info = await self.client.info("memory")
        return int(info["used_memory"])

    async def redis_work(self) -> tuple[float, int]:
        """Redis' CPU seconds (user + system) and commands processed so far; commands that
        scripts run count one each, as the scripts themselves do."""
        cpu = await self.client.info("cpu")
        stats = await self.client.info("stats")
        seconds = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        return seconds, int(stats["total_commands_processed"])


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


# --- stage 1: closed loop -------------------------------------------------------------------


async def wrk(url: str, pool: Path, connections: int, seconds: int) -> dict[str, Any]:
    lua = ROOT / "bench" / "ack.lua"
    cmd = ["taskset", "-c", LOAD_CPUS, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
           "--timeout", "10s", "-s", str(lua), url, "--", str(pool), "/webhook"]  # fmt: skip
    env = {**os.environ, "WRK_THREADS": "1"}
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    for line in out.decode().splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            return data
    raise RuntimeError(f"wrk printed no result: {out.decode()[-1000:]} {err.decode()[-1000:]}")


@dataclass
class ClosedRun:
    server: str
    body: str
    connections: int
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    pool_wraps: int
    server_cores: float
    foreign_cores: float


async def stage_closed(bench: Bench, pools: dict[str, Path], servers: dict[str, Service]) -> None:
    p = bench.profile
    runs: list[ClosedRun] = []
    for body in ("single", "batch50"):
        for connections in (32, 128):
            for rnd in range(p.rounds):
                order = ["deskline", "ceiling"] if rnd % 2 == 0 else ["ceiling", "deskline"]
                if rnd == 0 and "pywa" in servers:
                    order.append("pywa")
                if rnd == 0 and body == "batch50":
                    order.append("ceiling-each")
                for name in order:
                    service = servers[name]
                    url = f"http://127.0.0.1:{service.port}"
                    await bench.wait_quiet()
                    await bench.reset()
                    await wrk(url, pools[body], connections, p.warm_s)
                    await bench.reset()
                    before = bench.machine.snapshot()
                    data = await wrk(url, pools[body], connections, p.closed_s)
                    window = Window.between(before, bench.machine.snapshot())
                    errors = sum(data[k] for k in ("non2xx", "connect_errors", "read_errors",
                                                   "write_errors", "timeouts"))  # fmt: skip
                    run = ClosedRun(
                        name, body, connections, rnd, data["rps"], data["p50_us"] / 1e3,
                        data["p99_us"] / 1e3, data["p999_us"] / 1e3, errors,
                        data["pool_wraps"], window.cpu.get(service.pid, 0.0),
                        window.foreign_cores,
                    )  # fmt: skip
                    runs.append(run)
                    log(f"closed {body:7} c={connections:<3} {name:8} {run.rps:8.0f} req/s"
                        f"  p99 {run.p99_ms:6.1f} ms  server {run.server_cores:.2f} cores"
                        f"  foreign {run.foreign_cores:.2f}")  # fmt: skip
    bench.results["closed"] = [asdict(r) for r in runs]


# --- stage 2: open loop ---------------------------------------------------------------------


async def openloop(
    pool: Path, rate: float, count: int, targets: Sequence[int], out: Path
) -> dict[str, Any]:
    cmd = ["taskset", "-c", LOAD_CPUS, sys.executable, "-m", "bench.openloop", "--pool",
           str(pool), "--rate", str(rate), "--count", str(count), "--out", str(out)]  # fmt: skip
    for port in targets:
        cmd += ["--target", f"127.0.0.1:{port}"]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT)
    if await proc.wait() != 0:
        raise RuntimeError(f"open-loop generator failed: {cmd}")
    data: dict[str, Any] = json.loads(await asyncio.to_thread(out.read_text))
    return data


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in latencies_s)
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "p999_ms": percentile(ms, 99.9),
        "max_ms": ms[-1] if ms else float("nan"),
    }


async def stage_open(bench: Bench, pools: dict[str, Path], servers: dict[str, Service]) -> None:
    p = bench.profile
    rows = []
    for rate in (500, 1000):
        for name in ("deskline", "ceiling"):
            service = servers[name]
            assert service.port is not None
            await bench.wait_quiet()
            await bench.reset()
            before = bench.machine.snapshot()
            data = await openloop(
                pools["single"], rate, int(rate * p.open_s), [service.port],
                bench.workdir / "openloop.json",
            )  # fmt: skip
            window = Window.between(before, bench.machine.snapshot())
            latencies = [d - i for i, d in zip(data["intended"], data["done"], strict=True)]
            non2xx = sum(1 for s in data["status"] if not 200 <= s < 300)
            lag = [s - i for i, s in zip(data["intended"], data["sent"], strict=True) if s]
            row = {"server": name, "rate": rate, "requests": len(latencies), "non2xx": non2xx,
                   **latency_summary(latencies), "server_cores": window.cpu.get(service.pid, 0.0),
                   "send_lag_p99_ms": latency_summary(lag)["p99_ms"],
                   "foreign_cores": window.foreign_cores}  # fmt: skip
            rows.append(row)
            log(f"open {rate:5}/s {name:8} p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f}"
                f" max {row['max_ms']:.1f} ms non-2xx {non2xx}"
                f" foreign {window.foreign_cores:.2f}")  # fmt: skip
    bench.results["open"] = rows


# --- stages 3-5: end to end -----------------------------------------------------------------


@dataclass
class Deployment:
    webs: list[Service]
    workers: list[Service]


async def deploy(
    bench: Bench, probe: CompletionProbe, webs: int, workers: int, *, cpus: str = ALL_CPUS,
    worker_argv: Sequence[str] = ("-m", "bot", "worker"), label: str = "",
    worker_env: dict[str, str] | None = None,
) -> Deployment:  # fmt: skip
    dep = Deployment([], [])
    for i in range(webs):
        port = free_port()
        dep.webs.append(
            await bench.start(f"web{i}{label}", "web", ["-m", "bot", "web"], cpus, port=port)
        )
    for i in range(workers):
        env = bench.env(extra={**probe.worker_env(), **(worker_env or {})})
        dep.workers.append(
            await bench.start(f"worker{i}{label}", "worker", worker_argv, cpus, env=env)
        )
    return dep


def ids_of(pool: Sequence[bodies.Request], count: int) -> list[str]:
    return [m for r in pool[:count] for m in r.message_ids]


async def end_to_end(
    bench: Bench,
    pool: list[bodies.Request],
    pool_file: Path,
    *,
    rate: float,
    count: int,
    webs: int,
    workers: int,
    worker_argv: Sequence[str] = ("-m", "bot", "worker"),
    worker_env: dict[str, str] | None = None,
    label: str,
) -> dict[str, Any]:
    """Post `count` single-message webhooks at `rate`; wait until the probe has all of them."""
    await bench.wait_quiet()
    await bench.reset()
    probe = PROBES[bench.probe_name](bench.redis_url)
    await probe.start()
    dep = await deploy(
        bench, probe, webs, workers, worker_argv=worker_argv, label=label, worker_env=worker_env
    )
    message_ids = ids_of(pool, count)
    try:
        before = bench.machine.snapshot()
        data = await openloop(
            pool_file, rate, count, [s.port for s in dep.webs if s.port],
            bench.workdir / "e2e.json",
        )  # fmt: skip
        # Drain: every message should finish; the generator returns once the last one is acked.
        deadline = time.monotonic() + bench.profile.drain_limit_s
        done = probe.completed()
        # The probe fills a dict as events arrive; polling it keeps probes free of callbacks.
        while len(done) < len(message_ids) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        window = Window.between(before, bench.machine.snapshot())
        problems = await probe.problems(message_ids)
    finally:
        await bench.stop(*dep.webs, *dep.workers)
        await probe.stop()
    intended = data["intended"]
    acked = sum(1 for s in data["status"] if 200 <= s < 300)
    finished = [done[m] for m in message_ids if m in done]
    first, last_sent = intended[0], intended[-1]
    last_done = max(finished) if finished else float("nan")
    receipt_to_done = [done[m] - intended[i] for i, m in enumerate(message_ids) if m in done]
    web_cores = sum(window.cpu.get(s.pid, 0.0) for s in dep.webs)
    worker_cores = sum(window.cpu.get(s.pid, 0.0) for s in dep.workers)
    # Backlog when the last message was sent: how far processing lagged behind the offer.
    backlog = sum(1 for t in finished if t > last_sent) + (len(message_ids) - len(finished))
    row = {
        "label": label,
        "webs": webs,
        "workers": workers,
        "offered_rate": rate,
        "messages": len(message_ids),
        "acked": acked,
        "done": len(finished),
        "elapsed_s": last_done - first,
        "done_rate": len(finished) / (last_done - first) if finished else 0.0,
        "drain_after_last_send_s": last_done - last_sent,
        "backlog_at_last_send": backlog,
        **latency_summary(receipt_to_done),
        "ack": latency_summary([a - i for i, a in zip(intended, data["done"], strict=True)]),
        "web_cpu_ms_per_msg": web_cores * window.seconds / max(1, len(finished)) * 1000,
        "worker_cpu_ms_per_msg": worker_cores * window.seconds / max(1, len(finished)) * 1000,
        "web_cores": web_cores,
        "worker_cores": worker_cores,
        "foreign_cores": window.foreign_cores,
        "problems": problems,
        "peak_rss_mb": {s.name: round(s.peak_rss_mb, 1) for s in (*dep.webs, *dep.workers)},
    }
    log(f"e2e {label:18} {webs}web/{workers}wk offered {rate:.0f}/s: done {len(finished)}"
        f"/{len(message_ids)} at {row['done_rate']:.0f}/s, p50 {row['p50_ms']:.0f} p99"
        f" {row['p99_ms']:.0f} ms, worker {worker_cores:.2f} cores, web {web_cores:.2f},"
        f" foreign {window.foreign_cores:.2f} {problems or ''}")  # fmt: skip
    return row


async def key_families(client: aioredis.Redis) -> dict[str, dict[str, float]]:
    """Keys grouped by their first two `:` parts: count, total and mean MEMORY USAGE.

    Every key is measured (pipelined, `SAMPLES 0`: big collections such as the contact index
    are counted element by element, not estimated from 5 of them).
    """
    return families_of(await measure_keys(client))


async def measure_keys(client: aioredis.Redis) -> dict[str, int]:
    """key -> MEMORY USAGE (bytes, `SAMPLES 0`) of every key in the bench's Redis."""
    names = [raw.decode() async for raw in client.scan_iter(count=1000)]
    usage: dict[str, int] = {}
    for start in range(0, len(names), 1000):
        part = names[start : start + 1000]
        async with client.pipeline(transaction=False) as pipe:
            for key in part:
                pipe.memory_usage(key, samples=0)
            answers = await pipe.execute()
        # A key that expired between SCAN and MEMORY USAGE answers None.
        usage.update({k: int(a) for k, a in zip(part, answers, strict=True) if a is not None})
    return usage


def families_of(usage: dict[str, int]) -> dict[str, dict[str, float]]:
    totals: dict[str, list[int]] = {}
    for key, size in usage.items():
        family = ":".join(key.split(":")[:2])
        totals.setdefault(family, []).append(size)
    return {
        f: {"keys": len(v), "bytes_per_key": statistics.fmean(v), "bytes": sum(v)}
        for f, v in sorted(totals.items())
    }


# --- memory per entity ------------------------------------------------------------------------
# Every key of storage/keys.py that the two paths write, mapped to the entity it is kept for.
# A key kept per entity (one per message, contact, row, reply or ticket) counts whole; a key
# shared by all of a number's entities (an index, a queue) counts as a share: its bytes divided
# by the entities. `(entity, what, pattern, counts)`: `pattern` is matched against the whole
# key; the first matching rule wins (so more specific rules come first); `counts` marks the
# one key per entity whose number is the entity count. Entity "fixed" is neither per message
# nor per anything (settings, counters, the agent, arq's transient keys); "unassigned" keys
# (none expected) are listed in the report.
#
#   message  claim `dl:in:<wamid>` (keys.inbound) + the contact's timeline, `dl:tl:<n>:<c>`
#            (ZSET index) and `dl:tle:<n>:<c>` (HASH of entries). Timelines are per contact but
#            hold one entry per message; every bench customer writes once, so the timeline keys'
#            own overhead is counted per message here (a customer writing again pays only the
#            entry). On the reply path the timeline also holds the reply's outbound entry; the
#            report derives that entry's size as reply path minus ticket path.
#   contact  `dl:ct:<n>:<c>` (HASH) + shares of the number's search index `dl:ctix:<n>`, recent
#            list `dl:ctrecent:<n>` and user-id map `dl:ctuid:<n>`; the contact lock
#            `dl:lock:ct:*` (released after each job: expected 0).
#   row      after-hours row `dl:ah:<n>:<row>` (HASH) + its `:seen` SET + share of the rows
#            index `dl:ah:<n>` (ZSET); callbacks `dl:ahcb:*` (none here: no "notify me" tap).
#   reply    outgoing record `dl:out:<id>`, done-marker `dl:sent:<key>`, the auto-reply
#            throttle mark `dl:ar:<n>:<c>:<kind>`, the pair-rate bucket `dl:rate:pair:<n>:<c>`
#            (expires within seconds), the send claim `dl:sending:*` and send order
#            `dl:sendq:*` (transient: expected 0).
#   ticket   `dl:tk:<id>` (HASH) + `dl:tkm:<id>` (messages) + `dl:tkh:<id>` (history) +
#            request marker `dl:tknk:<n>:<wamid>` + open-ticket pointer `dl:tkopen:<n>:<c>` +
#            shares of the queue and indexes `dl:tk{q,idle,active,all,unans}:<n>`, the history
#            indexes `dl:tk{ag,tag,done}:*`, monitoring `dl:mon{q,svc,tags}:<n>` and
#            `dl:mond:<n>:<day>`, the agent's slot set `dl:agtk:*` and event stream `dl:ev:*`
#            and the portfolio `dl:portfolio:<n>`. The sequence counters and `dl:tk:holders`
#            are fixed.
ENTITY_RULES: tuple[tuple[str, str, str, bool], ...] = (
    ("message", "claim dl:in", r"dl:in:.+", True),
    ("message", "timeline index dl:tl", r"dl:tl:[^:]+:.+", False),
    ("message", "timeline entries dl:tle", r"dl:tle:[^:]+:.+", False),
    ("contact", "contact hash dl:ct", r"dl:ct:[^:]+:.+", True),
    ("contact", "search index dl:ctix (share)", r"dl:ctix:[^:]+", False),
    ("contact", "recent list dl:ctrecent (share)", r"dl:ctrecent:[^:]+", False),
    ("contact", "user-id map dl:ctuid (share)", r"dl:ctuid:[^:]+", False),
    ("contact", "lock dl:lock:ct (transient)", r"dl:lock:ct:.+", False),
    ("row", "seen set dl:ah:*:seen", r"dl:ah:[^:]+:[^:]+:seen", False),
    ("row", "row hash dl:ah:<n>:<row>", r"dl:ah:[^:]+:[^:]+", True),
    ("row", "rows index dl:ah:<n> (share)", r"dl:ah:[^:]+", False),
    ("row", "callbacks dl:ahcb", r"dl:ahcb:.+", False),
    ("reply", "outgoing record dl:out", r"dl:out:.+", True),
    ("reply", "done-marker dl:sent", r"dl:sent:.+", False),
    ("reply", "throttle mark dl:ar", r"dl:ar:.+", False),
    ("reply", "pair-rate bucket dl:rate:pair", r"dl:rate:pair:.+", False),
    ("reply", "send claim dl:sending (transient)", r"dl:sending:.+", False),
    ("reply", "send order dl:sendq (transient)", r"dl:sendq:.+", False),
    ("fixed", "ticket counters, holders", r"dl:tk:(seq|assignseq|lastassigned|holders)", False),
    ("ticket", "ticket hash dl:tk", r"dl:tk:.+", True),
    ("ticket", "messages dl:tkm", r"dl:tkm:.+", False),
    ("ticket", "history dl:tkh", r"dl:tkh:.+", False),
    ("ticket", "request marker dl:tknk", r"dl:tknk:.+", False),
    ("ticket", "open pointer dl:tkopen", r"dl:tkopen:.+", False),
    ("ticket", "queue, indexes dl:tk{q,idle,...} (share)",
     r"dl:tk(q|idle|active|all|unans):[^:]+", False),
    ("ticket", "history indexes dl:tk{ag,tag,done} (share)", r"dl:tk(ag|tag|done):.+", False),
    ("ticket", "monitoring dl:mon* (share)", r"dl:mon(q|svc|tags|d):.+", False),
    ("ticket", "agent slots dl:agtk, events dl:ev (share)", r"dl:(agtk|ev):.+", False),
    ("ticket", "portfolio dl:portfolio (share)", r"dl:portfolio:.+", False),
    ("fixed", "numbers, agents, stats, number rate", r"dl:(numbers|number|agents|agent|stats)"
     r"(:.*)?|dl:rate:number:.+", False),
    ("fixed", "arq (queue, health check, results)", r"arq:.+", False),
)  # fmt: skip
ENTITIES = ("message", "contact", "row", "reply", "ticket")
ENTITY_TITLES = {
    "message": "inbound message stored",
    "contact": "contact",
    "row": "after-hours row",
    "reply": "reply sent",
    "ticket": "ticket",
}
_COMPILED = [(e, w, re.compile(p), c) for e, w, p, c in ENTITY_RULES]


def entities_of(usage: dict[str, int]) -> dict[str, Any]:
    """Bytes per entity from every key's MEMORY USAGE, by ENTITY_RULES.

    Returns {entity: {"count", "bytes", "bytes_each", "parts": {what: {"keys", "bytes",
    "bytes_each"}}}} for the five entities (count 0 when the path makes none), plus "fixed"
    and "unassigned" ({what or key family: bytes}).
    """
    parts: dict[tuple[str, str], list[int]] = {}
    counts = dict.fromkeys(ENTITIES, 0)
    unassigned: dict[str, int] = {}
    for key, size in usage.items():
        for entity, what, pattern, counts_it in _COMPILED:
            if pattern.fullmatch(key):
                bucket = parts.setdefault((entity, what), [0, 0])
                bucket[0] += 1
                bucket[1] += size
                if counts_it:
                    counts[entity] += 1
                break
        else:
            family = ":".join(key.split(":")[:2])
            unassigned[family] = unassigned.get(family, 0) + size
    out: dict[str, Any] = {}
    for entity in ENTITIES:
        n = counts[entity]
        mine = {w: v for (e, w), v in parts.items() if e == entity}
        total = sum(v[1] for v in mine.values())
        out[entity] = {
            "count": n,
            "bytes": total,
            "bytes_each": total / n if n else 0.0,
            "parts": {
                w: {"keys": v[0], "bytes": v[1], "bytes_each": v[1] / n if n else 0.0}
                for w, v in mine.items()
            },
        }
    out["fixed"] = {w: v[1] for (e, w), v in parts.items() if e == "fixed"}
    out["unassigned"] = unassigned
    return out


def memory_pool(
    bench: Bench, probes: Sequence[str], pool: list[bodies.Request], pool_file: Path
) -> tuple[list[bodies.Request], Path, int]:
    """The backlog's bodies: the stage's pool when its first `backlog` messages come from
    distinct customers or no probe needs them to; else a pool of its own that does."""
    p = bench.profile
    distinct = any(getattr(PROBES[name], "distinct_customers", False) for name in probes)
    if not distinct or bench.customers >= p.backlog:
        return pool, pool_file, bench.customers
    own = list(
        bodies.requests(secret=SECRET.encode(), phone_number_id=PNID, count=p.backlog,
                        per_body=1, tag="M", timestamp=int(time.time()), customers=p.backlog)
    )  # fmt: skip
    return own, bodies.write_pool(bench.workdir / "memory.pool", own), p.backlog


HOLD_MS = 3_600_000


async def hold_queue(client: aioredis.Redis) -> list[tuple[bytes, float]]:
    """Make every queued job due an hour later (arq's queue is a ZSET scored by due time, ms);
    returns the original (job id, score) pairs for `release_queue`."""
    entries: list[tuple[bytes, float]] = await client.zrange(arq_queue_name, 0, -1, withscores=True)
    if entries:
        await client.zadd(arq_queue_name, {m: s + HOLD_MS for m, s in entries}, xx=True)
    return entries


async def release_queue(client: aioredis.Redis, entries: list[tuple[bytes, float]]) -> None:
    """Give the held jobs their due times back (only jobs still queued: XX)."""
    if entries:
        await client.zadd(arq_queue_name, dict(entries), xx=True)


async def memory_run(
    bench: Bench, probe_name: str, pool: list[bodies.Request], pool_file: Path, customers: int
) -> dict[str, Any]:
    """One path: a backlog with no worker, then one worker drains it until the probe has every
    message; bytes per message, per entity, drain rate."""
    p = bench.profile
    await bench.wait_quiet()
    await bench.reset()
    probe = PROBES[probe_name](bench.redis_url)
    await probe.start()
    web = await bench.start(
        f"web-mem-{probe_name}", "web", ["-m", "bot", "web"], SERVER_CPUS, port=free_port()
    )
    base = await bench.redis_used_memory()
    assert web.port is not None
    intake_before = await bench.redis_work()
    data = await openloop(pool_file, 1000, p.backlog, [web.port], bench.workdir / "mem.json")
    intake_after = await bench.redis_work()
    await bench.stop(web)
    acked = sum(1 for s in data["status"] if 200 <= s < 300)
    queued = await bench.redis_used_memory()
    families_queued = families_of(await measure_keys(bench.client))
    message_ids = ids_of(pool, p.backlog)
    # The worker must be up and idle when the clock starts: it writes its health check (what
    # `bench.start` waits for) only after its first poll has started a whole read of the queue
    # (250 jobs), whose work would escape both the drain time and the CPU window. So the
    # backlog is held (due an hour later) while the worker starts, then released.
    held = await hold_queue(bench.client)
    worker = await bench.start(
        f"worker-drain-{probe_name}",
        "worker",
        ["-m", "bot", "worker"],
        SERVER_CPUS,
        env=bench.env(extra=probe.worker_env()),
    )
    done = probe.completed()
    early = len(done)  # 0 unless the hold failed
    before = bench.machine.snapshot()
    await bench.client.config_resetstat()  # commandstats from here on: the drain's
    redis_before = await bench.redis_work()
    started = time.monotonic()
    await release_queue(bench.client, held)
    deadline = started + max(120.0, p.backlog / 50)
    while len(done) < len(message_ids) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    finished_at = max(done.values()) if done else float("nan")
    window = Window.between(before, bench.machine.snapshot())
    redis_after = await bench.redis_work()
    commandstats = await bench.client.info("commandstats")
    worker_cores = window.cpu.get(worker.pid, 0.0)
    problems = await probe.problems(message_ids)
    await bench.stop(worker)
    await probe.stop()
    processed = await bench.redis_used_memory()
    usage = await measure_keys(bench.client)
    row = {
        "probe": probe_name,
        "messages": len(message_ids),
        "acked": acked,
        "customers": min(len(message_ids), customers),  # wa_ids cycle through them
        "redis_bytes_per_queued_message": (queued - base) / max(1, acked),
        "redis_bytes_per_processed_message": (processed - base) / max(1, acked),
        # The sum of every key's MEMORY USAGE (keys only; used_memory also counts Redis' own
        # structures: the expires dict, allocator rounding, buffers).
        "memory_usage_bytes_per_processed_message": sum(usage.values()) / max(1, acked),
        "families_queued": families_queued,
        "families_processed": families_of(usage),
        "entities": entities_of(usage),
        "drain_rate": len(done) / (finished_at - started) if done else 0.0,
        "drain_done": len(done),
        "done_before_release": early,
        "drain_worker_cores": worker_cores,
        "drain_worker_cpu_ms_per_msg": worker_cores * window.seconds / max(1, len(done)) * 1000,
        # Redis' own cost: taking the backlog in (the intake script, 1,000 webhooks/s), then
        # processing it (the drain).
        "redis_intake_cpu_us_per_msg": (intake_after[0] - intake_before[0]) / max(1, acked) * 1e6,
        "redis_cpu_us_per_msg": (redis_after[0] - redis_before[0]) / max(1, len(done)) * 1e6,
        "redis_commands_per_msg": (redis_after[1] - redis_before[1]) / max(1, len(done)),
        # Per command: calls and Redis-side µs per message, most expensive first.
        "redis_commandstats_per_msg": {
            name.removeprefix("cmdstat_"): {
                "calls": int(stat["calls"]) / max(1, len(done)),
                "usec": int(stat["usec"]) / max(1, len(done)),
            }
            for name, stat in sorted(commandstats.items(), key=lambda kv: -int(kv[1]["usec"]))
        },
        "foreign_cores": window.foreign_cores,
        "problems": problems,
    }
    log(f"memory {probe_name}: {row['redis_bytes_per_queued_message']:.0f} B/queued message,"
        f" {row['redis_bytes_per_processed_message']:.0f} B/processed message;"
        f" drain {row['drain_rate']:.0f}/s on {worker_cores:.2f} cores,"
        f" {row['drain_worker_cpu_ms_per_msg']:.2f} ms CPU/message;"
        f" Redis {row['redis_intake_cpu_us_per_msg']:.0f} us intake,"
        f" {row['redis_cpu_us_per_msg']:.0f} us processing CPU and"
        f" {row['redis_commands_per_msg']:.0f} commands/message"
        f" {problems or ''}")  # fmt: skip
    return row


async def stage_memory(bench: Bench, pool: list[bodies.Request], pool_file: Path) -> None:
    """The backlog and drain once per memory probe (default: the reply path, then the ticket
    path), each on a freshly reset Redis, so that one stage yields every entity's bytes.

    `results["memory"]` keeps the first path's figures under the keys it always had, and
    `results["memory"]["paths"]` has every path's row by probe name.
    """
    probes = bench.memory_probes
    pool, pool_file, customers = memory_pool(bench, probes, pool, pool_file)
    paths = {}
    for name in probes:
        paths[name] = await memory_run(bench, name, pool, pool_file, customers)
    bench.results["memory"] = {**paths[probes[0]], "paths": paths}


async def stage_e2e(bench: Bench, pool: list[bodies.Request], pool_file: Path) -> None:
    p = bench.profile
    rows = []
    rows.append(
        await end_to_end(bench, pool, pool_file, rate=p.sustained_rate,
                         count=int(p.sustained_rate * p.sustained_s), webs=1, workers=1,
                         label="sustained")
    )  # fmt: skip
    rows.append(
        await end_to_end(bench, pool, pool_file, rate=p.latency_rate,
                         count=int(p.latency_rate * p.latency_s), webs=1, workers=1,
                         label="latency")
    )  # fmt: skip
    # The worker polls every DESKLINE_WORKER_POLL_DELAY_S (0.05 s by default); arq's own
    # default, 0.5 s, for comparison.
    rows.append(
        await end_to_end(bench, pool, pool_file, rate=p.latency_rate,
                         count=int(p.latency_rate * p.latency_s), webs=1, workers=1,
                         worker_env={"DESKLINE_WORKER_POLL_DELAY_S": "0.5"},
                         label="latency-poll500ms")
    )  # fmt: skip
    bench.results["e2e"] = rows


async def stage_scale(bench: Bench, pool: list[bodies.Request], pool_file: Path) -> None:
    p = bench.profile
    rows = []
    for webs, workers in ((1, 1), (1, 2), (2, 1), (2, 2)):
        rows.append(
            await end_to_end(bench, pool, pool_file, rate=p.scale_rate,
                             count=int(p.scale_rate * p.scale_s), webs=webs, workers=workers,
                             label=f"scale-{webs}x{workers}")
        )  # fmt: skip
    bench.results["scale"] = rows


# --- report ---------------------------------------------------------------------------------


def machine_info(redis_version: str) -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, check=False  # noqa: S607
    ).stdout.split("\n")[0]  # fmt: skip
    import aiohttp
    import arq.version
    import hiredis
    import redis

    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
        "aiohttp": aiohttp.__version__,
        "redis-py": redis.__version__,
        "hiredis": hiredis.__version__,
        "arq": arq.version.VERSION,
        "wrk": wrk_version.strip(),
    }


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict[str, Any]) -> str:
    """The results as Markdown tables (what `make bench` prints and BENCHMARKS.md quotes)."""
    out: list[str] = []
    m = results["machine"]
    out.append(f"Machine: {m['cpu']}; Python {m['python']}; Redis {m['redis']};"
               f" aiohttp {m['aiohttp']}; redis-py {m['redis-py']} (hiredis {m['hiredis']});"
               f" arq {m['arq']}; {m['wrk']}. Profile: {results['profile']},"
               f" probe: {results['probe']}, nice {results.get('nice', 0)}."
               f" {results['started']}.")  # fmt: skip
    closed = results.get("closed", [])
    if closed:
        out += ["", "### Acknowledgement path, closed loop (wrk; server pinned to core 0)", "",
                "| body | conns | server | req/s (median) | msgs/s | p50 ms | p99 ms | p99.9 ms"
                " | errors | vs ceiling | server cores |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for body in ("single", "batch50"):
            per_msg = 50 if body == "batch50" else 1
            for conns in (32, 128):
                cell = [r for r in closed if r["body"] == body and r["connections"] == conns]
                ceiling = {r["round"]: r["rps"] for r in cell if r["server"] == "ceiling"}
                for server in ("deskline", "ceiling", "ceiling-each", "pywa"):
                    rs = [r for r in cell if r["server"] == server]
                    if not rs:
                        continue
                    rps = _median([r["rps"] for r in rs])
                    ratios = [r["rps"] / ceiling[r["round"]] for r in rs if r["round"] in ceiling]
                    wraps = sum(r["pool_wraps"] for r in rs)
                    flag = f" (pool wrapped {wraps}x)" if wraps else ""
                    out.append(
                        f"| {body} | {conns} | {server}{flag} | {rps:,.0f} | {rps * per_msg:,.0f}"
                        f" | {_median([r['p50_ms'] for r in rs]):.1f}"
                        f" | {_median([r['p99_ms'] for r in rs]):.1f}"
                        f" | {_median([r['p999_ms'] for r in rs]):.1f}"
                        f" | {sum(r['errors'] for r in rs)} | {_median(ratios):.0%}"
                        f" | {_median([r['server_cores'] for r in rs]):.2f} |"
                    )
        foreign = _median([r["foreign_cores"] for r in closed])
        out.append(f"\nvs ceiling: median over rounds of (server req/s / ceiling req/s in the"
                   f" same round). Foreign CPU load during these runs: median {foreign:.2f}"
                   f" cores.")  # fmt: skip
        for conns in (32, 128):
            each = {r["round"]: r["rps"] for r in closed if r["server"] == "ceiling-each"
                    and r["body"] == "batch50" and r["connections"] == conns}  # fmt: skip
            mine = [r["rps"] / each[r["round"]] for r in closed if r["server"] == "deskline"
                    and r["body"] == "batch50" and r["connections"] == conns
                    and r["round"] in each]  # fmt: skip
            if mine:
                out.append(f"batch50 at {conns} connections: deskline is {_median(mine):.0%} of"
                           f" ceiling-each (a SET NX per message) in the same round.")  # fmt: skip
    if results.get("open"):
        out += ["", "### Acknowledgement path, open loop (fixed send times, single-message bodies)",
                "", "| server | rate/s | requests | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx"
                " | generator send lag p99 ms | foreign cores |",
                "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in results["open"]:
            out.append(f"| {r['server']} | {r['rate']} | {r['requests']} | {r['p50_ms']:.2f}"
                       f" | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.1f}"
                       f" | {r['non2xx']} | {r['send_lag_p99_ms']:.2f}"
                       f" | {r['foreign_cores']:.2f} |")  # fmt: skip
    rows = results.get("e2e", []) + results.get("scale", [])
    if rows:
        out += ["", "### End to end (web + worker free on both cores; done = probe)", "",
                "| run | web x worker | offered/s | done/messages | done/s | drain s"
                " | receipt-to-done p50 ms | p99 ms | worker CPU ms/msg | web CPU ms/msg"
                " | worker cores | foreign cores | problems |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            problems = "; ".join(r["problems"]) or "none"
            out.append(f"| {r['label']} | {r['webs']} x {r['workers']} | {r['offered_rate']:.0f}"
                       f" | {r['done']}/{r['messages']} | {r['done_rate']:,.0f}"
                       f" | {r['drain_after_last_send_s']:.1f} | {r['p50_ms']:.0f}"
                       f" | {r['p99_ms']:.0f} | {r['worker_cpu_ms_per_msg']:.2f}"
                       f" | {r['web_cpu_ms_per_msg']:.2f} | {r['worker_cores']:.2f}"
                       f" | {r['foreign_cores']:.2f} | {problems} |")  # fmt: skip
    mem = results.get("memory")
    if mem:
        out += report_memory(results, mem)
    return "\n".join(out)


def _entity_cell(entity: dict[str, Any], what: str | None = None) -> str:
    if not entity["count"]:
        return "-"
    if what is None:
        return f"**{entity['bytes_each']:,.0f}**"
    part = entity["parts"].get(what)
    return f"{part['bytes_each']:,.0f}" if part else "0"


def report_memory(results: dict[str, Any], mem: dict[str, Any]) -> list[str]:
    """The memory stage: per path, per entity, per key family."""
    # Results written before the stage ran several paths have one row, for `probe`.
    first = mem.get("probe", results["probe"])
    paths: dict[str, dict[str, Any]] = mem.get("paths") or {first: mem}
    out = ["", "### Memory", "",
           "Per path: a backlog posted with no worker, then drained by one worker pinned to core"
           " 0 (done = the path's probe; the worker starts with the backlog held, so the clock"
           " and its CPU count every message); Redis bytes are INFO used_memory deltas per"
           " message. The MEMORY USAGE sum is the keys alone: used_memory also counts Redis'"
           " own structures (the keyspace and expires tables, allocator rounding).",
           "", "| path | messages / customers | bytes/queued message | bytes/processed message"
           " | MEMORY USAGE sum/message | drain messages/s | worker cores"
           " | worker CPU ms/message | Redis CPU µs/message: intake, processing"
           " | Redis commands/message (processing)"
           " | foreign cores | problems |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in paths.items():
        usage = row.get("memory_usage_bytes_per_processed_message")
        out.append(f"| {name} | {row['acked']} / {row['customers']}"
                   f" | {row['redis_bytes_per_queued_message']:,.0f}"
                   f" | {row['redis_bytes_per_processed_message']:,.0f}"
                   f" | {'-' if usage is None else f'{usage:,.0f}'}"
                   f" | {row['drain_rate']:,.0f} | {row['drain_worker_cores']:.2f}"
                   f" | {row['drain_worker_cpu_ms_per_msg']:.2f}"
                   f" | {_num(row.get('redis_intake_cpu_us_per_msg'))},"
                   f" {_num(row.get('redis_cpu_us_per_msg'))}"
                   f" | {_num(row.get('redis_commands_per_msg'))} | {row['foreign_cores']:.2f}"
                   f" | {'; '.join(row.get('problems', [])) or 'none'} |")  # fmt: skip
    out += ["", "- Peak RSS: " + ", ".join(f"{role} {mb:.0f} MB" for role, mb
                                          in sorted(results["peak_rss_mb"].items()))]  # fmt: skip
    with_entities = {n: r["entities"] for n, r in paths.items() if "entities" in r}
    if with_entities:
        names = list(with_entities)
        out += ["", "Per entity (MEMORY USAGE, SAMPLES 0, of every key after the drain; bytes"
                " per entity = bytes of the keys kept for it / how many there are; a key shared"
                " by a number's entities, such as an index, counts as a share; mapping:"
                " `ENTITY_RULES` in bench/run.py; `-`: the path makes none):", "",
                f"| entity (count: {' / '.join(names)} path) | kept in | "
                + " | ".join(f"{n} path, bytes each" for n in names) + " |",
                "|---|---|" + "---|" * len(names)]  # fmt: skip
        for entity in ENTITIES:
            ents = [with_entities[n][entity] for n in names]
            counts = " / ".join(f"{e['count']:,}" for e in ents)
            out.append(f"| **{ENTITY_TITLES[entity]}** ({counts}) | all of it | "
                       + " | ".join(_entity_cell(e) for e in ents) + " |")  # fmt: skip
            whats = [w for e_, w, _, _ in ENTITY_RULES
                     if e_ == entity and any(w in e["parts"] for e in ents)]  # fmt: skip
            for what in whats:
                out.append(f"| | {what} | " + " | ".join(_entity_cell(e, what) for e in ents)
                           + " |")  # fmt: skip
        out.append("")
        out.append(
            "Counts: messages = claims `dl:in`, contacts = `dl:ct` hashes, after-hours"
            " rows = row hashes, replies sent = outgoing records `dl:out`, tickets ="
            " ticket hashes `dl:tk:<id>`. Every bench customer writes once, so a"
            " timeline (`dl:tl` + `dl:tle`, per contact) is counted whole per message."
        )
        if "reply" in with_entities and "ticket" in with_entities:
            timeline = ("timeline index dl:tl", "timeline entries dl:tle")
            per = {n: sum(_part(with_entities[n]["message"], w) for w in timeline)
                   for n in ("reply", "ticket")}  # fmt: skip
            out.append(
                f"On the reply path the timeline also holds the reply's outbound entry:"
                f" {per['reply']:,.0f} B of timeline per message there against"
                f" {per['ticket']:,.0f} B on the ticket path, so the reply's entry costs"
                f" about {per['reply'] - per['ticket']:,.0f} B more per reply sent."
            )
        for name in names:
            fixed = with_entities[name]["fixed"]
            unassigned = with_entities[name]["unassigned"]
            line = (
                f"{name} path: {sum(fixed.values()):,} B in keys kept per number or"
                f" transient ({', '.join(f'{w} {b:,}' for w, b in fixed.items())})"
            )
            if unassigned:
                line += "; UNASSIGNED: " + ", ".join(f"{f} {b:,} B" for f, b in
                                                     unassigned.items())  # fmt: skip
            out.append(line + ".")
    for name, row in paths.items():
        queued, processed = row["families_queued"], row["families_processed"]
        sampled = "bytes" not in next(iter(processed.values()), {"bytes": 0})
        how = "MEMORY USAGE of up to 200 keys each" if sampled else "MEMORY USAGE of every key"
        out += ["", f"Per key family, {name} path ({how}; bytes/message = family total /"
                " messages):", "",
                "| key family | keys queued | bytes/key | keys processed | bytes/key"
                " | bytes/message processed |", "|---|---|---|---|---|---|"]  # fmt: skip
        for family in sorted(set(queued) | set(processed)):
            q, p = queued.get(family, {}), processed.get(family, {})
            per_message = p.get("keys", 0) * p.get("bytes_per_key", 0) / max(1, row["acked"])
            out.append(f"| {family} | {q.get('keys', 0)} | {q.get('bytes_per_key', 0):.0f}"
                       f" | {p.get('keys', 0)} | {p.get('bytes_per_key', 0):.0f}"
                       f" | {per_message:.0f} |")  # fmt: skip
    return out


def _part(entity: dict[str, Any], what: str) -> float:
    part = entity["parts"].get(what)
    return float(part["bytes_each"]) if part and entity["count"] else 0.0


# --- main -----------------------------------------------------------------------------------


def build_pools(
    profile: Profile, workdir: Path, customers: int
) -> tuple[list[bodies.Request], dict[str, Path]]:
    now = int(time.time())
    key = SECRET.encode()
    single = list(
        bodies.requests(secret=key, phone_number_id=PNID, count=profile.single_pool,
                        per_body=1, tag="S", timestamp=now, customers=customers)
    )  # fmt: skip
    batch = bodies.requests(secret=key, phone_number_id=PNID, count=profile.batch_pool,
                            per_body=50, tag="B", timestamp=now)  # fmt: skip
    files = {
        "single": bodies.write_pool(workdir / "single.pool", single),
        "batch50": bodies.write_pool(workdir / "batch50.pool", list(batch)),
    }
    return single, files


def pywa_available() -> bool:
    try:
        import fastapi  # noqa: F401
        import pywa_async  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    profile = QUICK if args.quick else FULL
    stages = set(args.stages.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.out))
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(LOAD_CPUS)})
    bench = Bench(profile, workdir, args.probe)
    bench.memory_probes = tuple(args.memory_probes)
    bench.results["started"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    log(f"profile {profile.name}; building body pools in {workdir}")
    # The reply probe needs a customer per message (one after-hours reply per contact and
    # closed period), the ticket probe too (one ticket per message); the job probe keeps the
    # desk-like rotation of bodies.CUSTOMERS. The memory stage builds a backlog pool of its own
    # when its probes need distinct customers and this one does not have them.
    distinct = bool(getattr(PROBES[args.probe], "distinct_customers", False))
    bench.customers = profile.single_pool if distinct else bodies.CUSTOMERS
    single, pool_files = build_pools(profile, workdir, bench.customers)
    bench.redis_server.start()
    assert bench.redis_server.process is not None
    bench.machine.redis_pid = bench.redis_server.process.pid
    os.sched_setaffinity(bench.machine.redis_pid, {int(LOAD_CPUS)})
    bench.redis = aioredis.Redis.from_url(bench.redis_url)
    bench.machine.start_sampling()
    try:
        info = await bench.client.info("server")
        bench.results["machine"] = machine_info(str(info["redis_version"]))
        if stages & {"closed", "open"}:
            servers = {
                "deskline": await bench.start("deskline", "web", ["-m", "bot", "web"],
                                              SERVER_CPUS, port=free_port()),
            }  # fmt: skip
            for name, extra in (("ceiling", []), ("ceiling-each", ["--claim-each"])):
                port = free_port()
                servers[name] = await bench.start(
                    name, "ceiling", ["-m", "bench.ceiling", "--port", str(port),
                    "--redis-url", bench.redis_url, "--secret", SECRET, *extra],
                    SERVER_CPUS, port=port)  # fmt: skip
            if pywa_available():
                port = free_port()
                servers["pywa"] = await bench.start(
                    "pywa", "pywa", ["-m", "bench.pywa_receiver", "--port", str(port),
                                     "--secret", SECRET], SERVER_CPUS, port=port)  # fmt: skip
            else:
                bench.notes.append("pywa not installed: its reference row is skipped")
            try:
                if "closed" in stages:
                    await stage_closed(bench, pool_files, servers)
                if "open" in stages:
                    await stage_open(bench, pool_files, servers)
            finally:
                await bench.stop(*servers.values())
        if "e2e" in stages:
            await stage_e2e(bench, single, pool_files["single"])
        if "memory" in stages:
            await stage_memory(bench, single, pool_files["single"])
        if "scale" in stages:
            await stage_scale(bench, single, pool_files["single"])
    finally:
        await bench.machine.stop_sampling()
        await bench.stop(*list(bench.machine.services))
        await bench.client.aclose()
        bench.redis_server.stop()
    bench.results["peak_rss_mb"] = bench.peaks
    bench.results["notes"] = bench.notes
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return bench.results


def _probe_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PROBES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected probe names among {', '.join(sorted(PROBES))}, got {text!r}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="about two minutes, one short round of each"
    )
    parser.add_argument(
        "--probe",
        choices=sorted(PROBES),
        default="reply",
        help="what 'done' means end to end: reply (after-hours row + reply accepted by a fake"
        " Graph API; default), ticket (number always open: the message's ticket stored) or"
        " job (process_inbound_message finished)",
    )
    parser.add_argument(
        "--memory-probes",
        type=_probe_list,
        default=("reply", "ticket"),
        help="the memory stage's paths, comma-separated, each its own backlog and drain on a"
        " flushed Redis (default reply,ticket: every entity's bytes in one run)",
    )
    parser.add_argument("--stages", default="closed,open,e2e,memory,scale")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep pools and server logs")
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="scheduling niceness of the bench and everything it starts (default -10, when"
        " allowed: other work on a shared machine then disturbs the figures less; 0 to keep)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (make bench installs it)")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs 2 cores: the server on one, load generator and Redis on the other")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.nice and os.getsid(0) != os.getpid():
        # With autogroup scheduling (Linux's default for desktops and these VMs), nice weighs
        # only against processes of the same session: run in a session of our own, whose
        # group can be given the priority without touching the caller's session.
        again = [sys.executable, "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]
        return subprocess.run(  # noqa: S603 -- this very program
            again, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent, check=False
        ).returncode
    if args.nice:
        try:
            with contextlib.suppress(OSError):
                Path("/proc/self/autogroup").write_text(str(args.nice))
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
        except PermissionError:
            log(f"not allowed to run at nice {args.nice}: keeping the current priority")
            args.nice = os.getpriority(os.PRIO_PROCESS, 0)
    started = time.monotonic()
    results = asyncio.run(main_async(args))
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["nice"] = args.nice
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"results-{stamp}.json").write_text(json.dumps(results, indent=1))
    text = report(results)
    (args.out / "results.md").write_text(text + "\n")
    print(text)
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"\n(bench took {results['wall_s']:.0f} s; results in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
