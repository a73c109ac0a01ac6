"""The outbox: where replies to customers go. GraphOutbox talks to Meta; SandboxOutbox keeps them.

Which one runs is decided in `bot.deps.open_deps` and nowhere else: no access token means the
sandbox, so a development run never messages a real customer.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Protocol

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.domain.errors import PermanentError, TransientError
from storage.sandbox import SandboxStore

log = structlog.get_logger(__name__)

# Graph error codes worth a retry (WHATSAPP.md section 9): throttling and temporary failures.
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})


def read_status(wamid: str, *, typing: bool = False) -> dict[str, Any]:
    """The body marking `wamid` read, with WhatsApp's typing indicator when `typing`.

    https://developers.facebook.com/docs/whatsapp/cloud-api/typing-indicators
    """
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return body


class Outbox(Protocol):
    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str:
        """POST one message body (Meta's /messages form); return the message id Meta assigned.

        Raises:
            TransientError: worth retrying later.
            PermanentError: retrying cannot help; the body or the recipient must change.
        """
        ...

    async def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        """Mark the inbound message `wamid` (and the earlier ones of its chat) as read; with
        `typing`, also show the customer WhatsApp's typing indicator (up to 25 s, or until the
        next message). Idempotent at Meta: marking a read message again changes nothing.

        Raises:
            TransientError: worth retrying later.
            PermanentError: retrying cannot help (e.g. the message is older than 30 days).
        """
        ...


class SandboxOutbox:
    """Keeps what would have been sent in a capped Redis list (`python -m bot outbox` prints it)."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str:
        """Record the body; the id is derived from it, like Meta's, so statuses can attach."""
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{phone_number_id}:{payload}:{time.time_ns()}".encode())
        message_id = "wamid.sandbox." + digest.hexdigest()[:32]
        await self._store.keep(
            {"id": message_id, "phone_number_id": phone_number_id, "at": time.time(), "body": body}
        )
        log.info("sandbox_message_kept", message_id=message_id, type=body.get("type"))
        return message_id

    async def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        """Keep the read status in the sandbox list, as Meta would have been sent it."""
        await self._store.keep(
            {
                "id": None,
                "phone_number_id": phone_number_id,
                "at": time.time(),
                "body": read_status(wamid, typing=typing),
            }
        )
        log.info("sandbox_read_status_kept", message_id=wamid, typing=typing)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "graph_request_retrying",
        attempt=state.attempt_number,
        error=type(exc).__name__,
        code=getattr(exc, "code", None),
    )


class GraphOutbox:
    """Meta's Graph API: `POST {base}/{version}/{phone_number_id}/messages` with a bearer token.

    Transient failures are retried here a few times with jittered backoff (short, well under the
    job timeout); when they persist, TransientError reaches the job, which retries later.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        version: str,
        token: str,
        attempts: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._version = version
        self._token = token
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str:
        data = await self._request("POST", f"{phone_number_id}/messages", body)
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise PermanentError("Graph API answered without a message id") from exc

    async def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        # Same endpoint as a send; Meta answers {"success": true} (WHATSAPP.md 8.5).
        body = read_status(wamid, typing=typing)
        await self._request("POST", f"{phone_number_id}/messages", body)

    async def get(self, path: str) -> Any:
        """GET a Graph resource (e.g. `{waba_id}/message_templates`)."""
        return await self._request("GET", path, None)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """The single choke point: every Graph call, retried on transient errors only."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(
                multiplier=self._backoff_s, jitter=self._backoff_s, max=2.0
            ),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._request_once(method, path, body)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _request_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One HTTP call, with aiohttp and Graph errors mapped to bot.domain.errors."""
        url = f"{self._base}/{self._version}/{path}"
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.request(method, url, json=body, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"Graph API unreachable: {type(exc).__name__}") from exc
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if 200 <= status < 300:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", text[:200]) if isinstance(error, dict) else text[:200]
        if (isinstance(code, int) and code in TRANSIENT_CODES) or (code is None and status >= 500):
            raise TransientError(str(message), code=code, http_status=status)
        if status == 429:
            raise TransientError(str(message), code=code, http_status=status)
        raise PermanentError(str(message), code=code, http_status=status)
