"""Helpers to sign and post webhooks in tests, as Meta would."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from handlers.signature import sign
from tests.conftest import APP_SECRET


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret.encode(), body)}


async def post_webhook(client: TestClient[Any, Any], payload: Any) -> ClientResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post("/webhook", data=body, headers=signed_headers(body))
