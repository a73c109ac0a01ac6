"""The Meta-facing endpoint: subscription handshake (GET) and deliveries (POST)."""

from __future__ import annotations

import asyncio
import hmac
import json
import re

import structlog
from aiohttp import StreamReader, web
from redis.exceptions import RedisError

from bot.appkeys import intake_key, settings_key
from bot.domain.envelope import SplitWebhook, split_webhook
from bot.domain.errors import StorageUnavailableError
from bot.settings import Settings
from handlers.middlewares import error_body
from handlers.signature import SignatureCheck

log = structlog.get_logger(__name__)

# JSON can spell a lone UTF-16 surrogate (`"\ud800"`); Python decodes it into a str that has no
# UTF-8 form, so storing it would fail: a 500, and for every webhook sharing that intake round
# trip. Only such an escape can produce one (raw surrogate bytes are not valid UTF-8 JSON).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Meta's challenge is a short integer; anything longer is not Meta, and is not echoed.
MAX_CHALLENGE_CHARS = 256

# Slots for reading webhook bodies whose signature is not known yet (`install_read_slots`).
read_slots_key = web.AppKey("deskline.webhook_read_slots", asyncio.Semaphore)
# How long a webhook waits for a read slot before its 503. Waiting costs no more memory than
# refusing (aiohttp goes on reading a refused body for up to 10 s, discarding it, to keep the
# connection usable), and it lets a burst of real deliveries queue behind each other instead
# of being refused and redelivered minutes later.
SLOT_WAIT_S = 2.0
# Retry-After of that 503 (Meta follows its own schedule; other senders may read it).
RETRY_AFTER_S = 1


def install_read_slots(app: web.Application, settings: Settings) -> None:
    """Give `app` its `webhook_max_concurrent_reads` body-read slots (call in `create_app`)."""
    app[read_slots_key] = asyncio.Semaphore(settings.webhook_max_concurrent_reads)


async def verify_subscription(request: web.Request) -> web.Response:
    """GET /webhook: answer Meta's `hub.challenge` when `hub.verify_token` matches, else 403.

    The challenge is echoed as `text/plain` only, and only up to `MAX_CHALLENGE_CHARS` (400
    beyond): whoever holds the token cannot turn the endpoint into a page that serves their
    text.
    """
    settings = request.app[settings_key]
    query = request.query
    token = query.get("hub.verify_token", "")
    expected = settings.verify_token.get_secret_value() if settings.verify_token else None
    if (
        query.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        challenge = query.get("hub.challenge", "")
        if len(challenge) > MAX_CHALLENGE_CHARS:
            log.warning("webhook_subscription_refused", reason="challenge_too_long")
            return error_body(
                400,
                "bad_request",
                f"hub.challenge is longer than {MAX_CHALLENGE_CHARS} characters",
                field="hub.challenge",
            )
        log.info("webhook_subscription_verified")
        return web.Response(text=challenge, content_type="text/plain", charset="utf-8")
    log.warning("webhook_subscription_refused", mode=query.get("hub.mode"))
    raise web.HTTPForbidden(reason="verify token mismatch")


async def receive(request: web.Request) -> web.Response:
    """POST /webhook: verify, split, claim + enqueue, and only then 200.

    Refused before the body is read: 401 without a signature header, 413 when Content-Length
    is over `max_body_bytes`, 503 (Retry-After) when the body is still arriving and no read
    slot frees up within `SLOT_WAIT_S`. While it is read: 408 past `webhook_read_timeout_s`,
    413 past the limit. Then 403 for a wrong signature, 400 for a body that is not an
    envelope, 503 when Redis cannot store it; an item over `max_item_bytes` is stored as a
    stand-in, never refused. Idempotent: a redelivered item is recognised by its claim and
    not enqueued again.
    """
    settings = request.app[settings_key]
    if settings.app_secret is None:
        # Refuse rather than accept unsigned traffic; Meta retries while this is being fixed.
        log.error("webhook_unconfigured", missing="DESKLINE_APP_SECRET")
        raise StorageUnavailableError("webhook signature secret is not configured")
    header = request.headers.get("X-Hub-Signature-256")
    if header is None:
        raise web.HTTPUnauthorized(reason="missing X-Hub-Signature-256")
    declared = request.content_length
    if declared is not None and declared > settings.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=settings.max_body_bytes, actual_size=declared)
    check = SignatureCheck(settings.app_secret.get_secret_value().encode(), header)
    pieces = await read_body(request, check, settings)
    if not check.matches():
        # Dropped now, not when the 403 and its traceback are collected: under a flood of
        # forged bodies, this is what keeps memory at the read slots' worth.
        del pieces
        raise web.HTTPForbidden(reason="X-Hub-Signature-256 does not match the body")
    # The usual webhook, a few KB, arrives in one piece: used as it is, without a copy.
    body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    del pieces
    split = _storable(split_webhook(body, max_item_bytes=settings.max_item_bytes), body, settings)
    del body
    for oversize in split.oversize:
        log.warning(
            "webhook_item_oversize",
            kind=oversize.kind,
            detail=oversize.detail,
            size=oversize.size,
            limit=settings.max_item_bytes,
        )
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
        oversize=len(split.oversize),
    )
    return web.json_response({"ok": True, "new": result.new, "duplicate": result.duplicate})


async def read_body(request: web.Request, check: SignatureCheck, settings: Settings) -> list[bytes]:
    """The request's body in the pieces it arrived in, each fed to `check` on arrival.

    A body still arriving takes one of the app's read slots for the time of the read, so that
    at most `webhook_max_concurrent_reads` unverified bodies pile up in memory at once, and
    gets `webhook_read_timeout_s` in all, so that a trickled body cannot hold its slot. A body
    that arrived whole (aiohttp has it buffered already) is read at once, without a slot.

    Raises:
        web.HTTPException: 503 (no slot within `SLOT_WAIT_S`), 408 (deadline), 413 (over
            `max_body_bytes`), 400 (the sender closed the connection mid-body).
    """
    stream = request.content
    if stream.is_eof():
        # The whole body is here already (the usual webhook of a few KB, in one packet): there
        # is nothing to wait for and reading it takes no memory that is not taken already, so
        # it takes neither a slot nor a deadline (their timers would cost more than the read).
        return await _read(stream, check, settings.max_body_bytes)
    slots = request.app[read_slots_key]
    try:
        if slots.locked():
            async with asyncio.timeout(SLOT_WAIT_S):
                await slots.acquire()
        else:
            await slots.acquire()  # returns at once, without the timeout's timer
    except TimeoutError:
        log.warning("webhook_read_refused", reason="no_read_slot")
        raise _refusal(
            web.HTTPServiceUnavailable,
            "unavailable",
            "too many webhook bodies being read, retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    try:
        async with asyncio.timeout(settings.webhook_read_timeout_s):
            return await _read(stream, check, settings.max_body_bytes)
    except TimeoutError:
        log.warning("webhook_read_refused", reason="read_timeout")
        raise _refusal(
            web.HTTPRequestTimeout,
            "request_timeout",
            f"body not received within {settings.webhook_read_timeout_s:g} s",
        ) from None
    except ConnectionResetError:
        # The sender went away mid-body: nobody reads this answer, but it must not count (and
        # log a traceback) as a failure of ours, or anyone could fill the error log.
        log.info("webhook_read_refused", reason="connection_lost")
        raise web.HTTPBadRequest(reason="connection lost while reading the body") from None
    finally:
        slots.release()


async def _read(stream: StreamReader, check: SignatureCheck, limit: int) -> list[bytes]:
    # The pieces are kept as aiohttp hands them over (no copy) and joined only once the
    # signature matched: a forged body is never copied, and a read in progress holds no
    # growing buffer (reallocating one left the allocator's heap fragmented under a flood).
    pieces: list[bytes] = []
    size = 0
    while piece := await stream.readany():
        size += len(piece)
        if size > limit:
            # Only without Content-Length (chunked): a declared length was checked up front.
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        check.update(piece)
        pieces.append(piece)
    return pieces


def _refusal(
    cls: type[web.HTTPException],
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.HTTPException:
    # As JSON already, so that the errors middleware passes it on with its headers.
    text = json.dumps({"error": {"code": code, "message": message}})
    return cls(text=text, content_type="application/json", headers=headers)


def _storable(split: SplitWebhook, body: bytes, settings: Settings) -> SplitWebhook:
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
        return split_webhook(text.encode(), max_item_bytes=settings.max_item_bytes)
    return split
