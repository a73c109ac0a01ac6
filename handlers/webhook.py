"""The Meta-facing endpoint: subscription handshake (GET) and deliveries (POST)."""

from __future__ import annotations

import hmac
import json
import re

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from bot.envelope import SplitWebhook, split_webhook
from bot.errors import StorageUnavailableError
from bot.keys import intake_key, settings_key
from handlers.signature import verify_meta_signature

log = structlog.get_logger(__name__)

# JSON can spell a lone UTF-16 surrogate (`"\ud800"`); Python decodes it into a str that has no
# UTF-8 form, so storing it would fail: a 500, and for every webhook sharing that intake round
# trip. Only such an escape can produce one (raw surrogate bytes are not valid UTF-8 JSON).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


async def verify_subscription(request: web.Request) -> web.Response:
    """GET /webhook: answer Meta's `hub.challenge` when `hub.verify_token` matches, else 403."""
    settings = request.app[settings_key]
    query = request.query
    token = query.get("hub.verify_token", "")
    expected = settings.verify_token.get_secret_value() if settings.verify_token else None
    if (
        query.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        log.info("webhook_subscription_verified")
        return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
    log.warning("webhook_subscription_refused", mode=query.get("hub.mode"))
    raise web.HTTPForbidden(reason="verify token mismatch")


async def receive(request: web.Request) -> web.Response:
    """POST /webhook: verify, split, claim + enqueue, and only then 200.

    401 without a signature, 403 with a wrong one, 400 for a body that is not an envelope,
    413 above the body limit (aiohttp's `client_max_size`), 503 when Redis cannot store it.
    Idempotent: a redelivered item is recognised by its claim and not enqueued again.
    """
    settings = request.app[settings_key]
    if settings.app_secret is None:
        # Refuse rather than accept unsigned traffic; Meta retries while this is being fixed.
        log.error("webhook_unconfigured", missing="DESKLINE_APP_SECRET")
        raise StorageUnavailableError("webhook signature secret is not configured")
    header = request.headers.get("X-Hub-Signature-256")
    if header is None:
        raise web.HTTPUnauthorized(reason="missing X-Hub-Signature-256")
    body = await request.read()
    if not verify_meta_signature(settings.app_secret.get_secret_value().encode(), body, header):
        raise web.HTTPForbidden(reason="X-Hub-Signature-256 does not match the body")
    split = _storable(split_webhook(body), body)
    try:
        result = await request.app[intake_key].submit(split.items, split.other)
    except (RedisError, TimeoutError, OSError) as exc:
        log.warning("webhook_store_failed", error=type(exc).__name__, items=len(split.items))
        raise StorageUnavailableError("storage unavailable") from exc
    log.info(
        "webhook_accepted",
        items=len(split.items),
        new=result.new,
        duplicate=result.duplicate,
        unknown_number=result.unknown_number,
        other=len(split.other),
    )
    return web.json_response({"ok": True, "new": result.new, "duplicate": result.duplicate})


def _storable(split: SplitWebhook, body: bytes) -> SplitWebhook:
    """`split`, or when it holds a lone surrogate, the body split again with U+FFFD for it.

    Meta never sends one, and refusing would only make it redeliver for days: the message is
    kept with the replacement character, like any undecodable text.
    """
    if _SURROGATE_ESCAPE.search(body) is None:
        return split
    try:
        for item in split.items:
            item.raw.encode()
            item.claim_id.encode()
        for other in split.other:
            other.encode()
    except UnicodeEncodeError:
        text = _LONE_SURROGATE.sub("\ufffd", json.dumps(json.loads(body), ensure_ascii=False))
        return split_webhook(text.encode())
    return split
