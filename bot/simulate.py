"""Builds and signs webhook bodies as Meta would: for `python -m bot simulate` and benchmarks."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp

from handlers.signature import sign


def build_payload(
    *,
    phone_number_id: str,
    wa_id: str,
    name: str | None = None,
    text: str = "Hello",
    button_reply: str | None = None,
    timestamp: int | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One `messages` webhook from `wa_id` to `phone_number_id` (a text, or a button reply)."""
    message: dict[str, Any] = {
        "from": wa_id,
        "id": message_id or f"wamid.SIM{uuid.uuid4().hex}",
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
    }
    if button_reply:
        message["type"] = "interactive"
        message["interactive"] = {
            "type": "button_reply",
            "button_reply": {"id": button_reply, "title": text[:20]},
        }
    else:
        message["type"] = "text"
        message["text"] = {"body": text}
    contact: dict[str, Any] = {"wa_id": wa_id}
    if name:
        contact["profile"] = {"name": name}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "0",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": phone_number_id,
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [contact],
                            "messages": [message],
                        },
                    }
                ],
            }
        ],
    }


async def post(url: str, app_secret: bytes, payload: dict[str, Any]) -> tuple[int, str]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(app_secret, body)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status, await r.text()
