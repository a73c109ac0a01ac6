"""Open-loop load: requests leave at fixed times whatever the server does (no coordinated omission).

`python -m bench.openloop --pool FILE --rate R --count N --target HOST:PORT [--target ...] --out F`

wrk is closed-loop: a slow answer delays the next request, so a stalled server is sent less and
its stall is counted once instead of for every request that should have gone out meanwhile.
Here request `i` is due at `t0 + i / rate`; its latency is measured from that *intended* time to
the end of the answer, so time spent waiting for a free connection, or for this generator to
catch up, counts against the server (it can only overstate latency, never hide it).

A minimal HTTP/1.1 keep-alive client on asyncio protocols keeps the generator's own cost to
tens of microseconds per request: one request per connection at a time, as many connections as
the backlog needs (up to `--max-conns`), requests spread round-robin over the targets. Times are
`time.monotonic()` (system-wide on Linux), so the runner can compare them with its own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from pathlib import Path

from bench.bodies import read_pool

_TIMEOUT_S = 30.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `send` writes a request and resolves with the status code."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._complete()

    def _complete(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        status = int(head[9:12])
        body_start = end + 4
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
            if len(self.buffer) < body_start + length:
                return
            del self.buffer[: body_start + length]
        else:
            # Chunked: enough for the small bodies of a webhook answer.
            tail = self.buffer.find(b"0\r\n\r\n", body_start)
            if tail < 0:
                return
            del self.buffer[: tail + 5]
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc!r}"))


class _Pool:
    """Keep-alive connections to one target; `acquire` waits only when `limit` are busy."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[_Connection] = []
        self.waiters: deque[asyncio.Future[_Connection]] = deque()
        self.opened = 0

    async def acquire(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
            self.opened -= 1
        if self.opened < self.limit:
            self.opened += 1
            try:
                _, conn = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port
                )
            except OSError:
                self.opened -= 1
                raise
            return conn
        waiter: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: _Connection) -> None:
        if conn.closed:
            self.opened -= 1
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def discard(self, conn: _Connection) -> None:
        if conn.transport is not None:
            conn.transport.close()
        self.opened -= 1


def _request_bytes(signature: str, body: bytes, path: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run(
    requests: list[bytes], targets: list[tuple[str, int]], rate: float, max_conns: int, warm: int
) -> dict[str, object]:
    """Send `requests[i]` at `t0 + i / rate`; return intended/done times and statuses."""
    loop = asyncio.get_running_loop()
    pools = [_Pool(host, port, max_conns) for host, port in targets]
    for pool in pools:
        # Pre-open a few connections so that the first requests do not pay for the handshake.
        conns = [await pool.acquire() for _ in range(warm)]
        for conn in conns:
            pool.release(conn)
    count = len(requests)
    intended = [0.0] * count
    sent = [0.0] * count  # when the request was written: `sent - intended` is our own lag
    done = [0.0] * count
    status = [0] * count

    async def one(i: int) -> None:
        pool = pools[i % len(pools)]
        conn: _Connection | None = None
        try:
            conn = await pool.acquire()
            sent[i] = loop.time()
            status[i] = await asyncio.wait_for(conn.send(requests[i]), _TIMEOUT_S)
        except (OSError, TimeoutError):
            status[i] = 0
            if conn is not None:
                pool.discard(conn)
                conn = None
        finally:
            done[i] = loop.time()
            if conn is not None:
                pool.release(conn)

    tasks = []
    t0 = loop.time() + 0.05
    for i in range(count):
        due = t0 + i / rate
        intended[i] = due
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i)))
    await asyncio.gather(*tasks)
    for pool in pools:
        for conn in pool.idle:
            if conn.transport is not None:
                conn.transport.close()
    return {
        "rate": rate,
        "intended": intended,
        "sent": sent,
        "done": done,
        "status": status,
        "connections": sum(p.opened for p in pools),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop")
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0, help="first pool line to send")
    parser.add_argument("--target", action="append", required=True, help="host:port")
    parser.add_argument("--path", default="/webhook")
    parser.add_argument("--max-conns", type=int, default=512, help="per target")
    parser.add_argument("--warm", type=int, default=8, help="connections opened per target first")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pool = read_pool(args.pool)[args.offset : args.offset + args.count]
    if len(pool) < args.count:
        parser.error(f"the pool has {len(pool)} requests from offset {args.offset}")
    requests = [_request_bytes(sig, body, args.path) for sig, body in pool]
    targets = []
    for target in args.target:
        host, _, port = target.rpartition(":")
        targets.append((host or "127.0.0.1", int(port)))
    started = time.monotonic()
    result = asyncio.run(run(requests, targets, args.rate, args.max_conns, args.warm))
    result["wall_s"] = time.monotonic() - started
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
