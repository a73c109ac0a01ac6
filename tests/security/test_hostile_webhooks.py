"""Hostile webhook bodies: correctly signed (as if Meta's secret leaked, or Meta erred), and
anything inside. No 500, no failed job, and nothing stored that does not read back as a valid
record. Unsigned bodies are refused before anything parses them.

tests/test_conformance.py already fuzzes envelope shapes; this property goes after the values
instead: lone surrogates and other odd unicode, huge strings, deep nesting, wrong types and
numbers JSON allows but Python does not expect (NaN, 2**70), in every slot of an envelope.
The API's bodies get the text no store can keep, which its schemathesis run never generates.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.domain.models import InboundMessage, StatusUpdate
from storage import Stores, keys
from tests.conftest import ADMIN_TOKEN
from tests.webhooks import signed_headers

PNID = "111"
WA_ID = "5511987654321"

_odd_text = st.sampled_from(
    [
        "\ud800",  # lone high surrogate
        "\udfff",  # lone low surrogate
        "a\ud83d",  # half an emoji
        "\x00",
        "\u202e",  # right-to-left override
        "😀",
        "İ",  # changes length when lower-cased
        "' OR 1=1 --",
        "dl:in:*",  # looks like one of our keys
        "{next_opening}",
        "\\u0000",
    ]
)
_short_text = st.one_of(st.text(max_size=30), _odd_text)
_text = st.one_of(_short_text, st.integers(1, 200_000).map(lambda n: "x" * n))
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),  # json.dumps writes NaN/Infinity
    _text,
)


def _nest(depth: int, leaf: Any, kind: str) -> Any:
    for _ in range(depth):
        leaf = [leaf] if kind == "list" else {"a": leaf}
    return leaf


_deep = st.builds(_nest, st.integers(30, 400), _scalar, st.sampled_from(["list", "dict"]))
_json = st.recursive(
    _scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_short_text, c, max_size=3),
    max_leaves=10,
)
# Anything at all where a value is expected: a wrong type, deep nesting, odd text.
_hostile = st.one_of(_json, _deep)


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten, else anything: most bodies get far enough to be stored.

    (`st.one_of(valid, valid, _hostile)` would not weigh it: identical branches count once,
    and `st.integers` favours its bounds.)
    """
    return st.sampled_from(range(10)).flatmap(lambda n: _hostile if n == 9 else valid)


_wamid = _text.map(lambda s: "wamid." + s)
_message = st.fixed_dictionaries(
    {
        "from": _mostly(st.sampled_from([WA_ID, "15551234567", "+55 (11) 98765-4321"])),
        "id": _mostly(_wamid),
        "timestamp": _mostly(st.integers(0, 2**40).map(str)),
        "type": _mostly(st.sampled_from(["text", "interactive", "image", "button", "unknown"])),
    },
    optional={
        "text": _mostly(st.fixed_dictionaries({"body": _mostly(_text)})),
        "interactive": _hostile,
        "image": _hostile,
        "context": _hostile,
        "from_user_id": _mostly(_short_text),
    },
)
_status = st.fixed_dictionaries(
    {
        "id": _mostly(_wamid),
        "status": _mostly(st.sampled_from(["sent", "delivered", "read", "failed"])),
    },
    optional={"timestamp": _hostile, "recipient_id": _hostile, "errors": _hostile},
)
_contact = st.fixed_dictionaries(
    {"wa_id": _mostly(st.just(WA_ID))},
    optional={"profile": _mostly(st.fixed_dictionaries({"name": _mostly(_text)}))},
)
_envelope = st.builds(
    lambda messages, statuses, contacts, metadata, field: {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": metadata,
                            "contacts": contacts,
                            "messages": messages,
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    },
    _mostly(st.lists(_message, min_size=1, max_size=3)),
    _mostly(st.lists(_status, max_size=2)),
    _mostly(st.lists(_contact, max_size=2)),
    _mostly(st.just({"phone_number_id": PNID})),
    _mostly(st.just("messages")),
)


def _deep_text(depth: int) -> str:
    """`depth` nested lists as JSON text (json.dumps itself recurses too deep to write it)."""
    return "[" * depth + '"deep"' + "]" * depth


def _with_deep_body(depth: int) -> bytes:
    """A well-formed message whose text body nests `depth` levels deep."""
    message = {"from": WA_ID, "id": "wamid.DEEP", "timestamp": "1767261600", "type": "text"}
    value = {"metadata": {"phone_number_id": PNID}, "messages": [{**message, "text": "@"}]}
    envelope = {"object": "whatsapp_business_account", "entry": [{"changes": [value]}]}
    envelope["entry"][0]["changes"] = [{"field": "messages", "value": value}]
    return json.dumps(envelope).replace('"@"', _deep_text(depth)).encode()


# Seven bodies in ten are envelopes with hostile values, the rest not envelopes at all.
_other_bodies = (
    _hostile.map(lambda p: json.dumps(p).encode()),
    st.integers(500, 200_000).map(_with_deep_body),
    st.binary(max_size=200),  # not JSON, not UTF-8
)
_bodies = st.sampled_from(range(10)).flatmap(
    lambda n: _other_bodies[n - 7] if n >= 7 else _envelope.map(lambda p: json.dumps(p).encode())
)


async def assert_well_formed(redis: aioredis.Redis) -> dict[str, int]:
    """Every record deskline wrote reads back through its model; returns counts per kind."""
    stores = Stores.on(redis)
    counts = {"claims": 0, "statuses": 0, "contacts": 0, "timeline": 0}
    async for raw_key in redis.scan_iter("dl:*", count=1000):
        key = raw_key.decode()
        if key.startswith("dl:in:"):
            wamid = key.removeprefix("dl:in:")
            InboundMessage.from_claim(json.loads(await redis.get(raw_key)), wamid=wamid)
            counts["claims"] += 1
        elif key.startswith("dl:st:"):
            claim_id = key.removeprefix("dl:st:")
            StatusUpdate.from_claim(json.loads(await redis.get(raw_key)), claim_id=claim_id)
            counts["statuses"] += 1
        elif key.startswith(f"dl:ct:{PNID}:"):
            contact = await stores.contacts.get(PNID, key.removeprefix(f"dl:ct:{PNID}:"))
            assert contact is not None, key
            counts["contacts"] += 1
        elif key.startswith(f"dl:tl:{PNID}:"):
            entries = await stores.timeline.list(
                PNID, key.removeprefix(f"dl:tl:{PNID}:"), limit=1000
            )
            assert entries, key
            counts["timeline"] += len(entries)
        elif key == keys.OTHER_EVENTS:
            for raw in await redis.lrange(raw_key, 0, -1):
                json.loads(raw)
    assert await redis.hlen(keys.DEAD_LETTERS) == 0
    return counts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(body=_bodies)
@example(body=_deep_text(1_000_000).encode())
@example(
    body=json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": PNID},
                                "contacts": [{"wa_id": WA_ID, "profile": {"name": "\ud800"}}],
                                "messages": [
                                    {
                                        "from": WA_ID,
                                        "id": "wamid.\udfff",
                                        "timestamp": "1767261600",
                                        "type": "text",
                                        "text": {"body": "x" * 3_500_000 + "\ud83d"},
                                    }
                                ],
                            },
                        }
                    ]
                }
            ],
        }
    ).encode()
)
async def test_signed_hostile_bodies_never_500_and_store_only_well_formed_records(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    body: bytes,
) -> None:
    await redis.flushdb()  # hypothesis shares the fixtures between examples
    await redis.sadd(keys.NUMBERS, PNID)
    resp = await client.post("/webhook", data=io.BytesIO(body), headers=signed_headers(body))
    text = await resp.text()
    event(f"status {resp.status}")
    assert resp.status in (200, 400), text
    assert "Traceback" not in text
    if resp.status == 400:
        assert json.loads(text)["error"]["code"] == "bad_request"
        return
    worker = make_worker()
    await worker.run_check()  # raises if any job failed
    await worker.close()
    counts = await assert_well_formed(redis)
    event(f"stored a message: {counts['timeline'] > 0}")


async def test_a_lone_surrogate_is_kept_as_a_replacement_character(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    """Meta never sends one; if it did, the message is stored (U+FFFD), not refused for days."""
    await redis.sadd(keys.NUMBERS, PNID)
    message = {"from": WA_ID, "id": "wamid.S\ud800", "timestamp": "1767261600", "type": "text"}
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": PNID},
                            "messages": [{**message, "text": {"body": "oi \udc00"}}],
                        },
                    }
                ]
            }
        ],
    }
    body = json.dumps(payload).encode()
    assert b"\\ud800" in body
    resp = await client.post("/webhook", data=io.BytesIO(body), headers=signed_headers(body))
    assert resp.status == 200, await resp.text()
    await make_worker().run_check()
    [entry] = await Stores.on(redis).timeline.list(PNID, WA_ID)
    assert entry.id == "wamid.S\ufffd"
    assert entry.text == "oi \ufffd"
    assert await assert_well_formed(redis) == {
        "claims": 1,
        "statuses": 0,
        "contacts": 1,
        "timeline": 1,
    }


# --- unsigned floods are refused before any parsing -----------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403)],
    ids=["unsigned", "wrongly_signed"],
)
async def test_unsigned_bodies_are_refused_without_parsing(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    status: int,
) -> None:
    """The signature is checked on the raw bytes first: no JSON parser ever sees a forged body,
    and without a signature header the body is not even read off the socket."""
    import handlers.webhook

    parsed: list[bytes] = []
    reads: list[int] = []
    real_split = handlers.webhook.split_webhook
    real_read = handlers.webhook.read_body

    def spy_split(body: bytes, **kwargs: Any) -> Any:
        parsed.append(body)
        return real_split(body, **kwargs)

    async def spy_read(*args: Any) -> Any:
        reads.append(1)
        return await real_read(*args)

    monkeypatch.setattr(handlers.webhook, "split_webhook", spy_split)
    monkeypatch.setattr(json, "loads", _forbidden)
    monkeypatch.setattr(handlers.webhook, "read_body", spy_read)
    body = b'{"object": "whatsapp_business_account", "entry": []}' + b" " * 1_000_000
    resp = await client.post("/webhook", data=io.BytesIO(body), headers=headers)
    assert resp.status == status
    assert parsed == []
    assert len(reads) == (0 if status == 401 else 1)
    assert await redis.dbsize() == 0
    monkeypatch.undo()
    # The same body, signed, is parsed (the spies above would have seen it).
    ok = await client.post("/webhook", data=io.BytesIO(body), headers=signed_headers(body))
    assert ok.status == 200


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("json.loads called on an unsigned body")


# --- the API, with the same odd text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "PUT",
            "/api/v1/numbers/1000",
            b'{"timezone": "UTC", "service_hours": {"always_open": true},'
            b' "display_name": "a\\ud800"}',
        ),
        ("PUT", "/api/v1/agents/ana", b'{"name": "\\ud800", "numbers": [], "role": "agent"}'),
        ("POST", "/api/v1/quick-replies/categories", b'{"name": "\\udc00x"}'),
        ("PUT", "/api/v1/templates/t/pt_BR", b'{"body": "x\\ud800"}'),
        ("GET", "/api/v1/contacts?q=%ED%A0%80", None),  # a surrogate, UTF-8-encoded
        ("PUT", "/api/v1/numbers/1000", b"[" * 100_000 + b"]" * 100_000),
    ],
    ids=["number", "agent", "category", "template", "search", "deep"],
)
async def test_the_api_refuses_unstorable_text_with_a_4xx_naming_the_problem(
    client: TestClient[Any, Any], method: str, path: str, body: bytes | None
) -> None:
    """What schemathesis does not generate: text no store can keep, nesting past any parser."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    resp = await client.request(method, path, data=body, headers=headers)
    assert 400 <= resp.status < 500, await resp.text()
    assert (await resp.json())["error"]["message"]
