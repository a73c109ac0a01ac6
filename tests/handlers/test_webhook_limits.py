"""POST/GET /webhook limits: body reads before the signature is known, item and batch sizes.

Reads: a declared length over the limit is refused unread, a read waits for one of a few
slots (503 with Retry-After when none frees up), and a body has a deadline (408). Items: a
signed item over `max_item_bytes` is stored as a small stand-in (never refused: Meta would
redeliver it for days), and a large batch is stored by several bounded script calls, all of
which must succeed before the 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.app import create_app
from bot.domain.models import InboundMessage, StatusUpdate
from bot.runtime.embedded import free_port
from bot.settings import Settings
from bot.simulate import build_payload
from handlers.signature import SignatureCheck, sign, verify_meta_signature
from storage import Stores, keys
from tests.conftest import APP_SECRET, VERIFY_TOKEN
from tests.webhooks import signed_headers

PNID = "106540352242922"
WA_ID = "5511987654321"
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def _envelope(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}],
    }


def _messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return _envelope(
        {
            "messaging_product": "whatsapp",
            "metadata": {"phone_number_id": PNID, "display_phone_number": "15550001111"},
            "contacts": [{"wa_id": WA_ID, "profile": {"name": "Ana"}}],
            "messages": list(messages),
        }
    )


def _text(wamid: str, text: str = "Oi") -> dict[str, Any]:
    return {
        "from": WA_ID,
        "id": wamid,
        "timestamp": "1767261600",
        "type": "text",
        "text": {"body": text},
    }


async def _post(client: TestClient[Any, Any], payload: Any) -> ClientResponse:
    """`tests.webhooks.post_webhook`, streaming the body (some here are megabytes)."""
    body = json.dumps(payload).encode()
    return await client.post("/webhook", data=io.BytesIO(body), headers=signed_headers(body))


async def _evalsha_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@contextlib.asynccontextmanager
async def _raw_post(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A POST /webhook whose body the test writes itself, byte by byte if it likes."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    lines = ["POST /webhook HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _status(reader: asyncio.StreamReader, within_s: float) -> int:
    line = await asyncio.wait_for(reader.readline(), timeout=within_s)
    return int(line.split()[1])


# --- GET: the subscription handshake ----------------------------------------------------------


async def test_the_challenge_is_echoed_as_plain_text_and_only_when_short(
    client: TestClient[Any, Any],
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}
    ok = await client.get("/webhook", params={**params, "hub.challenge": "9" * 256})
    assert ok.status == 200
    assert ok.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await ok.text() == "9" * 256

    long = await client.get("/webhook", params={**params, "hub.challenge": "<b>" + "x" * 300})
    assert long.status == 400
    error = (await long.json())["error"]
    assert error["field"] == "hub.challenge"
    assert "<b>" not in await long.text()
    # The cap does not reveal anything to a caller without the token: still 403.
    forged = {**params, "hub.verify_token": "nope", "hub.challenge": "x" * 300}
    assert (await client.get("/webhook", params=forged)).status == 403


# --- POST: reading the body before its signature is known --------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(
    make_settings: Callable[..., Settings], aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_body_bytes=4096)))
    headers = {"Content-Length": "4097", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    async with _raw_post(client, headers) as (reader, _):
        # Not one byte of the body was sent: the answer comes from the headers alone.
        assert await _status(reader, within_s=5) == 413


async def test_a_chunked_body_over_the_limit_is_413(
    make_settings: Callable[..., Settings], aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_body_bytes=4096)))

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
    resp = await client.post("/webhook", data=pieces(), headers=headers)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_a_signed_body_arriving_in_many_pieces_is_verified_and_stored(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    body = json.dumps(_messages(_text("wamid.PIECES", "x" * 20_000))).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 700):
            yield body[start : start + 700]
            await asyncio.sleep(0)

    resp = await client.post("/webhook", data=pieces(), headers=signed_headers(body))
    assert resp.status == 200, await resp.text()
    assert await redis.exists(keys.inbound("wamid.PIECES")) == 1


async def test_a_trickled_body_gets_408_at_the_deadline_and_frees_its_slot(
    make_settings: Callable[..., Settings],
    aiohttp_client: ClientFactory,
    redis: aioredis.Redis,
    logs: list[dict[str, Any]],
) -> None:
    settings = make_settings(webhook_read_timeout_s=0.5, webhook_max_concurrent_reads=1)
    client = await aiohttp_client(create_app(settings))
    await redis.sadd(keys.NUMBERS, PNID)
    headers = {"Content-Length": "100", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    async with _raw_post(client, headers) as (reader, writer):
        started = time.monotonic()
        writer.write(b" ")
        await writer.drain()
        status = await _status(reader, within_s=5)
        assert status == 408
        assert 0.4 < time.monotonic() - started < 3
    assert {"event": "webhook_read_refused", "reason": "read_timeout"}.items() <= logs[-1].items()
    # Its only read slot is free again.
    ok = await _post(client, _messages(_text("wamid.AFTER")))
    assert ok.status == 200


async def _post_in_two_pieces(client: TestClient[Any, Any], payload: Any) -> ClientResponse:
    """A signed webhook whose body is still arriving when the handler starts."""
    body = json.dumps(payload).encode()

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.05)
        yield body[10:]

    return await client.post("/webhook", data=pieces(), headers=signed_headers(body))


async def test_a_webhook_waits_briefly_for_a_read_slot_then_gets_503_with_retry_after(
    make_settings: Callable[..., Settings], aiohttp_client: ClientFactory, redis: aioredis.Redis
) -> None:
    """One slot, held by a slow body: a delivery behind it waits (SLOT_WAIT_S), and is served
    if the slot frees up meanwhile; if it does not, it gets a 503 Meta will redeliver. A body
    that had arrived whole needs no slot at all."""
    settings = make_settings(webhook_read_timeout_s=10, webhook_max_concurrent_reads=1)
    client = await aiohttp_client(create_app(settings))
    await redis.sadd(keys.NUMBERS, PNID)
    body = json.dumps(_messages(_text("wamid.SLOW"))).encode()
    head = {**signed_headers(body), "Content-Length": str(len(body))}

    # The slow body finishes after 0.5 s: the delivery queued behind it gets in.
    async with _raw_post(client, head) as (reader, writer):
        writer.write(body[:10])
        await writer.drain()
        await asyncio.sleep(0.1)  # it holds the slot
        behind = asyncio.create_task(_post_in_two_pieces(client, _messages(_text("wamid.BEHIND"))))
        await asyncio.sleep(0.4)
        assert not behind.done()
        writer.write(body[10:])
        await writer.drain()
        assert await _status(reader, within_s=5) == 200
        assert (await behind).status == 200

    # The slow body never finishes: the delivery behind it is refused after its wait, while
    # one that arrives whole is read at once.
    async with _raw_post(client, head) as (reader, writer):
        writer.write(body[:10])
        await writer.drain()
        await asyncio.sleep(0.1)
        whole = await asyncio.wait_for(_post(client, _messages(_text("wamid.WHOLE"))), 1)
        assert whole.status == 200
        started = time.monotonic()
        refused = await _post_in_two_pieces(client, _messages(_text("wamid.REFUSED")))
        waited = time.monotonic() - started
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json())["error"]["code"] == "unavailable"
    assert 1.5 < waited < 5
    assert await redis.exists(keys.inbound("wamid.REFUSED")) == 0


async def test_a_sender_that_disconnects_mid_body_is_no_server_error(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, logs: list[dict[str, Any]]
) -> None:
    """Served as `python -m bot web` serves it (aiohttp's test server would cancel the handler
    instead): the read fails with ConnectionResetError, which is the sender's doing."""
    runner = web.AppRunner(create_app(make_settings(webhook_max_concurrent_reads=1)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await redis.sadd(keys.NUMBERS, PNID)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        writer.write(f"{head}X-Hub-Signature-256: sha256={'0' * 64}\r\n\r\n{{".encode())
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await until_logged(logs, "webhook_read_refused")
        assert not [e for e in logs if e["event"] == "request_failed"]
        assert [e["reason"] for e in logs if e["event"] == "webhook_read_refused"] == [
            "connection_lost"
        ]
        # Its only read slot is free again.
        body = json.dumps(_messages(_text("wamid.NEXT"))).encode()
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/webhook"
            async with http.post(url, data=body, headers=signed_headers(body)) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def until_logged(logs: list[dict[str, Any]], event: str) -> None:
    for _ in range(100):
        if any(e["event"] == event for e in logs):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{event} never logged: {logs}")


# --- signed items over the item limit -----------------------------------------------------------


async def test_an_oversize_message_is_acknowledged_and_kept_as_a_small_stand_in(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    payload = _messages(_text("wamid.HUGE", "x" * 3_000_000), _text("wamid.SMALL"))
    resp = await _post(client, payload)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"ok": True, "new": 2, "duplicate": 0}

    assert await redis.strlen(keys.inbound("wamid.HUGE")) < 1024
    stored = json.loads(await redis.get(keys.inbound("wamid.HUGE")))
    assert stored["message"] == {
        "from": WA_ID,
        "id": "wamid.HUGE",
        "timestamp": "1767261600",
        "type": "text",
        "deskline_truncated": True,
        "deskline_bytes": stored["message"]["deskline_bytes"],
    }
    assert stored["message"]["deskline_bytes"] > 3_000_000
    assert stored["contact"] == {"wa_id": WA_ID, "profile": {"name": "Ana"}}
    record = InboundMessage.from_claim(stored, wamid="wamid.HUGE")
    assert (record.type, record.meta_type, record.text) == ("unsupported", "text", None)
    # The message next to it is stored whole.
    small = json.loads(await redis.get(keys.inbound("wamid.SMALL")))
    assert small["message"]["text"]["body"] == "Oi"
    oversize = [e for e in logs if e["event"] == "webhook_item_oversize"]
    assert [(e["kind"], e["detail"]) for e in oversize] == [("message", "text")]

    # Redelivered: recognised by its claim, as any message.
    again = await _post(client, payload)
    assert await again.json() == {"ok": True, "new": 0, "duplicate": 2}
    await make_worker().run_check()
    entries = await Stores.on(redis).timeline.list(PNID, WA_ID)
    assert {e.id for e in entries} == {"wamid.HUGE", "wamid.SMALL"}


async def test_an_oversize_message_with_a_huge_id_is_claimed_under_a_short_digest(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    payload = _messages(_text("wamid." + "z" * 100_000))
    first = await _post(client, payload)
    assert await first.json() == {"ok": True, "new": 1, "duplicate": 0}
    [claim] = [key async for key in redis.scan_iter(match="dl:in:*")]
    assert len(claim) < 100
    assert await redis.strlen(claim) < 1024
    # The digest is the same on every delivery: a redelivery is still a duplicate.
    again = await _post(client, payload)
    assert await again.json() == {"ok": True, "new": 0, "duplicate": 1}


async def test_oversize_statuses_and_other_events_are_kept_as_summaries(
    client: TestClient[Any, Any], redis: aioredis.Redis, logs: list[dict[str, Any]]
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    status = {
        "id": "wamid.OUT",
        "status": "failed",
        "timestamp": "1767261600",
        "recipient_id": WA_ID,
        "errors": [{"code": 131000, "title": "x" * 200_000}],
    }
    value = {"metadata": {"phone_number_id": PNID}, "statuses": [status]}
    resp = await _post(client, _envelope(value))
    assert resp.status == 200, await resp.text()
    claim = keys.status_claim("wamid.OUT:failed")
    assert await redis.strlen(claim) < 1024
    update = StatusUpdate.from_claim(
        json.loads(await redis.get(claim)), claim_id="wamid.OUT:failed"
    )
    assert (update.id, update.status, update.recipient_id) == ("wamid.OUT", "failed", WA_ID)

    # Ten 4 MB-class events of a field deskline does not handle: ten small summaries.
    used_before = (await redis.info("memory"))["used_memory"]
    for i in range(10):
        event = _envelope({"huge": "y" * 1_000_000, "n": i}, field="account_update")
        assert (await _post(client, event)).status == 200
    kept = await redis.lrange(keys.OTHER_EVENTS, 0, -1)
    assert len(kept) == 10
    assert all(len(raw) < 512 for raw in kept)
    summary = json.loads(kept[0])
    assert summary["field"] == "account_update"
    assert summary["deskline_truncated"] is True
    assert summary["deskline_bytes"] > 1_000_000
    assert (await redis.info("memory"))["used_memory"] - used_before < 1_000_000
    kinds = [e["kind"] for e in logs if e["event"] == "webhook_item_oversize"]
    assert kinds == ["status"] + ["other"] * 10


# --- large batches -----------------------------------------------------------------------------


async def test_a_batch_of_5000_messages_is_stored_by_bounded_script_calls_each_once(
    make_settings: Callable[..., Settings], aiohttp_client: ClientFactory, redis: aioredis.Redis
) -> None:
    client = await aiohttp_client(create_app(make_settings(intake_chunk_items=700)))
    await redis.sadd(keys.NUMBERS, PNID)
    payload = _messages(*(_text(f"wamid.B{i}") for i in range(5000)))
    await _post(client, build_payload(phone_number_id=PNID, wa_id=WA_ID))  # script loaded
    calls_before = await _evalsha_calls(redis)
    resp = await _post(client, payload)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"ok": True, "new": 5000, "duplicate": 0}
    # ceil(5000 / 700) script calls, as Redis itself counted them.
    assert await _evalsha_calls(redis) - calls_before == 8
    assert await redis.zcard("arq:queue") == 5001
    claims = [k async for k in redis.scan_iter(match="dl:in:wamid.B*", count=1000)]
    assert len(claims) == 5000

    again = await _post(client, payload)
    assert await again.json() == {"ok": True, "new": 0, "duplicate": 5000}
    assert await redis.zcard("arq:queue") == 5001


async def test_a_batch_is_acknowledged_only_when_every_script_call_stored_its_part(
    make_settings: Callable[..., Settings], aiohttp_client: ClientFactory, redis: aioredis.Redis
) -> None:
    """Two calls store the messages, a third fails (the other-events list is unusable): 503,
    and Meta's redelivery, once Redis is sound, stores the rest and repeats nothing."""
    client = await aiohttp_client(create_app(make_settings(intake_chunk_items=500)))
    await redis.sadd(keys.NUMBERS, PNID)
    await redis.set(keys.OTHER_EVENTS, "not a list")
    payload = _messages(*(_text(f"wamid.P{i}") for i in range(1000)))
    change = {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
    payload["entry"][0]["changes"].append(change)

    failed = await _post(client, payload)
    assert failed.status == 503
    assert await redis.zcard("arq:queue") == 1000

    await redis.delete(keys.OTHER_EVENTS)
    again = await _post(client, payload)
    assert again.status == 200
    assert await again.json() == {"ok": True, "new": 0, "duplicate": 1000}
    assert await redis.zcard("arq:queue") == 1000
    assert await redis.llen(keys.OTHER_EVENTS) == 1


async def test_signing_many_pieces_equals_signing_the_body() -> None:

    body = b'{"entry": []}' * 1000
    header = sign(APP_SECRET.encode(), body)
    check = SignatureCheck(APP_SECRET.encode(), header)
    for start in range(0, len(body), 333):
        check.update(body[start : start + 333])
    assert check.matches()
    assert verify_meta_signature(APP_SECRET.encode(), body, header)
    assert not SignatureCheck(APP_SECRET.encode(), "sha256=\u00e9").matches()
    assert not SignatureCheck(APP_SECRET.encode(), None).matches()
