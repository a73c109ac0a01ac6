"""POST/GET /webhook: signatures, envelopes, limits, idempotent intake, 503 on storage loss."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.app import create_app
from bot.runtime.embedded import EmbeddedRedis
from bot.settings import Settings
from bot.simulate import build_payload
from storage import keys
from tests.conftest import VERIFY_TOKEN
from tests.webhooks import post_webhook, signed_headers

PNID = "106540352242922"


async def serve(redis: aioredis.Redis, *numbers: str) -> None:
    await redis.sadd(keys.NUMBERS, *(numbers or (PNID,)))


async def test_handshake_echoes_challenge_when_token_matches(client: TestClient[Any, Any]) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    resp = await client.get("/webhook", params=params)
    assert resp.status == 200
    assert await resp.text() == "1158201444"


async def test_handshake_refuses_wrong_token(client: TestClient[Any, Any]) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    resp = await client.get("/webhook", params=params)
    assert resp.status == 403


async def test_missing_signature_is_401(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/webhook", data=b'{"entry": []}')
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_wrong_signature_is_403(client: TestClient[Any, Any]) -> None:
    body = b'{"entry": []}'
    headers = signed_headers(body, secret="another-secret")
    resp = await client.post("/webhook", data=body, headers=headers)
    assert resp.status == 403
    malformed = await client.post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": "sha256=\u00e9\u00e9"}
    )
    assert malformed.status == 403


async def test_body_that_is_not_an_envelope_is_400_naming_the_field(
    client: TestClient[Any, Any],
) -> None:
    cases: list[tuple[bytes, str | None]] = [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"object": "whatsapp_business_account"}', "entry"),
        (b'{"entry": [1]}', "entry[0]"),
        (b'{"entry": [{"changes": {"a": 1}}]}', "entry[0].changes"),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
            b' "value": {"metadata": {}, "messages": []}}]}]}',
            "entry[0].changes[0].value.metadata.phone_number_id",
        ),
    ]
    for body, field in cases:
        resp = await client.post("/webhook", data=body, headers=signed_headers(body))
        assert resp.status == 400, body
        error = (await resp.json())["error"]
        assert error.get("field") == field
        assert "Traceback" not in error["message"]


async def test_body_over_the_limit_is_413(
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_body_bytes=4096)))
    body = json.dumps({"entry": [], "pad": "x" * 4096}).encode()
    resp = await client.post("/webhook", data=body, headers=signed_headers(body))
    assert resp.status == 413
    just_under = json.dumps({"entry": [], "pad": "x" * 3000}).encode()
    ok = await client.post("/webhook", data=just_under, headers=signed_headers(just_under))
    assert ok.status == 200


async def test_message_is_claimed_with_its_raw_item_and_enqueued_once(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    await serve(redis)
    payload = build_payload(phone_number_id=PNID, wa_id="5511987654321", name="Ana",
                            text="Oi", message_id="wamid.ONE")  # fmt: skip
    first = await post_webhook(client, payload)
    assert first.status == 200
    assert (await first.json())["new"] == 1
    again = await post_webhook(client, payload)
    assert again.status == 200
    assert (await again.json()) == {"ok": True, "new": 0, "duplicate": 1}

    stored = json.loads(await redis.get(keys.inbound("wamid.ONE")))
    assert stored["message"]["text"]["body"] == "Oi"
    assert stored["contact"]["profile"]["name"] == "Ana"
    assert stored["phone_number_id"] == PNID
    assert await redis.zcard("arq:queue") == 1
    assert await redis.ttl(keys.inbound("wamid.ONE")) > 7 * 24 * 3600


async def test_ten_concurrent_deliveries_enqueue_one_job_that_runs_once(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await serve(redis)
    payload = build_payload(phone_number_id=PNID, wa_id="5511987654321", message_id="wamid.TEN")
    responses = await asyncio.gather(*(post_webhook(client, payload) for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    news = [(await r.json())["new"] for r in responses]
    assert sorted(news) == [0] * 9 + [1]
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_complete == 1


async def test_unknown_number_is_acknowledged_counted_and_not_processed(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    payload = build_payload(phone_number_id="999", wa_id="5511987654321", message_id="wamid.X")
    resp = await post_webhook(client, payload)
    assert resp.status == 200
    assert await redis.exists(keys.inbound("wamid.X")) == 0
    assert await redis.zcard("arq:queue") == 0
    assert int(await redis.hget(keys.INTAKE_STATS, "unknown_number")) == 1


async def test_redis_down_answers_503_then_200_once_back(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, persistent=False)
    server.start()
    try:
        client = await aiohttp_client(
            create_app(make_settings(redis_url=server.url, redis_timeout_s=0.5))
        )
        direct = aioredis.Redis.from_url(server.url)
        await direct.sadd(keys.NUMBERS, PNID)
        await direct.aclose()
        payload = build_payload(phone_number_id=PNID, wa_id="5511987654321", message_id="wamid.D")
        server.stop()
        down = await post_webhook(client, payload)
        assert down.status == 503
        text = await down.text()
        assert "Traceback" not in text
        assert json.loads(text)["error"]["code"] == "unavailable"
        server.start()
        direct = aioredis.Redis.from_url(server.url)
        await direct.sadd(keys.NUMBERS, PNID)  # persistence is off in this test's server
        await direct.aclose()
        back = await post_webhook(client, payload)
        assert back.status == 200
        assert (await back.json())["new"] == 1
    finally:
        server.stop()
