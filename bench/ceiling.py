"""The ceiling: the least work any receiver must do, on the same stack as deskline.

`python -m bench.ceiling --port P --redis-url URL --secret S` serves `POST /webhook`: verify the
HMAC over the raw body, parse the JSON, then one `SET NX` (on the first message id) and one
`LPUSH` (the raw body) in a single pipeline, and 200. No envelope walk, no per-message claim, no
middleware, no logging, no metrics: deskline's throughput is reported as a ratio of this one's.

With `--claim-each`, the pipeline holds one `SET NX` per message of the body instead (and still
one `LPUSH`): the floor for a receiver that deduplicates each message of a batch, as deskline
must, since Meta may redeliver a message inside a differently composed batch.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json

import redis.asyncio as aioredis
from aiohttp import web

CLAIM_PREFIX = "ceiling:claim:"
QUEUE = "ceiling:queue"
CLAIM_TTL_S = 8 * 24 * 3600


def make_app(redis_url: str, secret: bytes, *, claim_each: bool = False) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    client = aioredis.Redis.from_url(redis_url)

    async def receive(request: web.Request) -> web.Response:
        header = request.headers.get("X-Hub-Signature-256")
        if header is None:
            return web.Response(status=401)
        body = await request.read()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), header.encode()):
            return web.Response(status=403)
        try:
            data = json.loads(body)
            if claim_each:
                ids = [
                    m["id"]
                    for e in data["entry"]
                    for c in e["changes"]
                    for m in c["value"].get("messages", ())
                ]
            else:
                ids = [data["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]
        except (ValueError, LookupError, TypeError):
            return web.Response(status=400)
        async with client.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.set(CLAIM_PREFIX + message_id, b"1", nx=True, ex=CLAIM_TTL_S)
            pipe.lpush(QUEUE, body)
            await pipe.execute()
        return web.Response(text="ok")

    async def close(_: web.Application) -> None:
        await client.aclose()

    app.router.add_post("/webhook", receive)
    app.on_cleanup.append(close)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--claim-each", action="store_true", help="one SET NX per message")
    args = parser.parse_args()
    app = make_app(args.redis_url, args.secret.encode(), claim_each=args.claim_each)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
