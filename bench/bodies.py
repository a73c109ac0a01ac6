"""Pools of distinct signed webhook bodies, so that deduplication never short-circuits the work.

Every body carries message ids no other body has, and its `X-Hub-Signature-256` is computed once
here, not by the load generator. A pool is written as one line per request, `<signature>\\t<body>`
(JSON never holds a raw tab), which both `bench/ack.lua` (wrk) and `bench/openloop.py` read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.signature import sign

# Customers repeat across the pool (a desk sees the same people write several times); the
# number of distinct ones bounds the contacts a later stage would create.
CUSTOMERS = 5_000
BASE_WA_ID = 5511900000000
TEXTS = (
    "Olá, bom dia! Gostaria de saber o status do meu pedido 48213.",
    "Hola, ¿a qué hora abren mañana?",
    "Preciso de ajuda com a segunda via do boleto, por favor.",
    "Hi, my order arrived damaged, what should I do?",
)


@dataclass(frozen=True, slots=True)
class Request:
    """One signed POST: its body, its signature header and the message ids it carries."""

    body: bytes
    signature: str
    message_ids: tuple[str, ...]


def _message(
    serial: int, tag: str, timestamp: int, customers: int = CUSTOMERS
) -> tuple[dict[str, Any], dict[str, Any]]:
    wa_id = str(BASE_WA_ID + serial % customers)
    message = {
        "from": wa_id,
        "id": f"wamid.BENCH{tag}{serial:09d}",
        "timestamp": str(timestamp),
        "type": "text",
        "text": {"body": TEXTS[serial % len(TEXTS)]},
    }
    contact = {"profile": {"name": f"Cliente {serial % customers}"}, "wa_id": wa_id}
    return message, contact


def envelope(
    phone_number_id: str, messages: list[dict[str, Any]], contacts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A `messages` webhook as Meta batches it: one change carrying every message and contact."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "contacts": contacts,
        "messages": messages,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    }


def requests(
    *,
    secret: bytes,
    phone_number_id: str,
    count: int,
    per_body: int,
    tag: str,
    timestamp: int,
    customers: int = CUSTOMERS,
) -> Iterator[Request]:
    """`count` bodies of `per_body` messages each; ids are `wamid.BENCH<tag><serial>`.

    Senders rotate through `customers` distinct wa_ids (message `serial` comes from customer
    `serial % customers`).

    Distinct `tag`s give disjoint pools (one per stage, so that no stage sees another's ids).
    """
    serial = 0
    for _ in range(count):
        messages, contacts = [], []
        for _ in range(per_body):
            message, contact = _message(serial, tag, timestamp, customers)
            messages.append(message)
            contacts.append(contact)
            serial += 1
        payload = envelope(phone_number_id, messages, contacts)
        # Meta's own bodies are compact JSON with escaped non-ASCII; so are these.
        body = json.dumps(payload, separators=(",", ":")).encode()
        yield Request(body, sign(secret, body), tuple(m["id"] for m in messages))


def write_pool(path: Path, pool: list[Request]) -> Path:
    """Write `pool` as `<signature>\\t<body>` lines; returns `path`."""
    with path.open("wb") as f:
        for request in pool:
            f.write(request.signature.encode() + b"\t" + request.body + b"\n")
    return path


def read_pool(path: Path) -> list[tuple[str, bytes]]:
    """[(signature, body)] from a file written by `write_pool`."""
    out = []
    with path.open("rb") as f:
        for line in f:
            signature, _, body = line.rstrip(b"\n").partition(b"\t")
            out.append((signature.decode(), body))
    return out
