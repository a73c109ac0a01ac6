"""Transfer requests (`keys.transfer_request`): one per ticket at a time, each change one script
(storage/lua/transfer_requests_*.lua) that also appends to the ticket's history
(`keys.ticket_history`: `transfer_requested`, `transfer_accepted`, `transfer_declined`,
`transfer_expired`, with `from` the holder, `to` the requester and `detail` the request id),
so that a request and its record cannot part.

Expiry is judged against the clock the caller passes: a pending request past its `expires_at`
reads as expired at once (`TransferRequest.at`), and is recorded as expired by the next answer
or the next request on the ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.transfers import TransferAnswer, TransferRequest, TransferRequestStatus
from storage import keys, lua


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _time(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class TransferRequestsStore:
    """The latest transfer request of each ticket (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._open = lua.register(redis, "transfer_requests_open")
        self._answer = lua.register(redis, "transfer_requests_answer")

    async def open(
        self,
        ticket_id: str,
        phone_number_id: str,
        request_id: str,
        *,
        requester: str,
        holder: str,
        now: datetime,
        expires_at: datetime,
    ) -> TransferRequest:
        """Record a pending request from `requester` to take the ticket over from `holder`.

        Not idempotent: a second request while this one is pending is refused.

        Raises:
            ConflictError: `request_pending` (naming the pending request's id) or
                `ticket_changed` (the ticket is no longer open with `holder`).
        """
        ttl = max(1, int((expires_at - now).total_seconds())) + keys.TRANSFER_REQUEST_KEEP_S
        raw = await self._open(
            keys=[
                keys.transfer_request(ticket_id),
                keys.ticket(ticket_id),
                keys.ticket_history(ticket_id),
            ],
            args=[
                _ms(now),
                request_id,
                requester,
                holder,
                _ms(expires_at),
                ttl,
                phone_number_id,
            ],
        )
        outcome = _text(raw[0])
        if outcome == "pending":
            raise ConflictError(
                "request_pending", f"transfer request {_text(raw[1])} is waiting for an answer"
            )
        if outcome == "changed":
            raise ConflictError(
                "ticket_changed", f"ticket {ticket_id} changed meanwhile: read it again"
            )
        found = await self.get(ticket_id)
        if found is None:  # expired within the same instant: cannot happen with a TTL >= 1 day
            raise NotFoundError(f"transfer request {request_id} not found")
        return found

    async def answer(
        self, ticket_id: str, request_id: str, answer: TransferAnswer, *, by: str, now: datetime
    ) -> TransferRequest:
        """Record `by`'s answer to the pending request; the request as stored.

        Raises:
            NotFoundError: the ticket's latest request is not `request_id`.
            ConflictError: `request_expired` (recorded as expired now if it was not yet),
                `already_answered` (naming its status).
        """
        raw = await self._answer(
            keys=[keys.transfer_request(ticket_id), keys.ticket_history(ticket_id)],
            args=[_ms(now), request_id, answer, by, keys.TRANSFER_REQUEST_KEEP_S],
        )
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"transfer request {request_id} not found")
        if outcome == "expired" or (outcome == "answered" and _text(raw[1]) == "expired"):
            raise ConflictError("request_expired", f"transfer request {request_id} expired")
        if outcome == "answered":
            raise ConflictError(
                "already_answered", f"transfer request {request_id} was {_text(raw[1])}"
            )
        found = await self.get(ticket_id)
        if found is None or found.id != request_id:
            raise NotFoundError(f"transfer request {request_id} not found")
        return found

    async def get(self, ticket_id: str) -> TransferRequest | None:
        """The ticket's latest request as stored (`TransferRequest.at` tells whether it has
        expired since)."""
        raw = await self._redis.hgetall(keys.transfer_request(ticket_id))
        if not raw:
            return None
        data = {_text(k): _text(v) for k, v in raw.items()}
        status: TransferRequestStatus = data["status"]  # type: ignore[assignment]  # ours
        return TransferRequest(
            id=data["id"],
            ticket_id=ticket_id,
            phone_number_id=data["phone_number_id"],
            requester=data["requester"],
            holder=data["holder"],
            status=status,
            created_at=_time(data["created_at"]),
            expires_at=_time(data["expires_at"]),
            answered_by=data.get("answered_by") or None,
            answered_at=_time(data["answered_at"]) if data.get("answered_at") else None,
        )
