"""The limit on failed authentications, shared by the API, the console sign-in and /metrics.

Only failures count: a wrong or revoked token, never a success, never a request without any.
Around each credential check:

1. `begin_check` runs *before* the credential is looked at. A client over its own budget
   (`auth_failures_burst`, then `auth_failures_per_minute`, keyed on its real address, an IPv6
   client on its /64) is refused with 429 whatever it sends, so it cannot keep testing tokens;
   so is a client that failed recently while the global budget is spent. Otherwise a slot is
   reserved for the check, so that a hundred concurrent requests cannot all be checked before
   the first failure is counted.
2. The credential is checked; `Check.passed` gives the slot back (a success never counts),
   `Check.failed` keeps it and marks the client as having failed recently.

The global budget (`auth_failures_global_per_second`, with a second's worth of burst) bounds
guessing spread over many addresses without letting an attacker lock everybody out: while it
is spent, a client with no recent failure is still checked (a colleague with the right token
gets in), but its failure is answered 429 and costs it its whole burst, and clients that
failed recently are refused before the check. An attacker holding many addresses thus gets,
beyond the global rate, one guess per address per burst period (a minute by default).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from bot.appkeys import settings_key, stores_key
from bot.domain.auth_limits import CheckSlot, FailureLimits
from bot.settings import Settings
from handlers.client import client_address, client_network
from handlers.middlewares import error_body

log = structlog.get_logger(__name__)

RETRY_AFTER: Final = "Retry-After"


def limits(settings: Settings) -> FailureLimits:
    """The failure budgets the settings describe."""
    return FailureLimits(
        client_per_second=settings.auth_failures_per_minute / 60,
        client_burst=settings.auth_failures_burst,
        global_per_second=settings.auth_failures_global_per_second,
        global_burst=max(1, math.ceil(settings.auth_failures_global_per_second)),
    )


def _seconds(wait_ms: int) -> int:
    # Retry-After counts whole seconds; rounding up, a client that obeys it is not refused again.
    return max(1, math.ceil(wait_ms / 1000))


# How long a check may wait for a slot held by checks in flight, and how often it looks again.
IN_FLIGHT_WAIT_S: Final = 2.0
IN_FLIGHT_RETRY_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class Check:
    """One credential check as the limiter sees it.

    `wait_s` > 0: refused, answer 429 with `Retry-After: wait_s` without looking at the
    credential. Otherwise check it, then report the outcome with `passed` or `failed`
    (a check abandoned on an error leaves its slot to decay within one interval).
    """

    request: web.Request
    client: str
    slot: CheckSlot

    @property
    def wait_s(self) -> int:
        return _seconds(self.slot.wait_ms) if self.slot.wait_ms > 0 else 0

    async def passed(self) -> None:
        """The credential was right: give the reserved slots back. Best effort: should Redis
        fail now, the slot decays on its own within one interval, and the request goes on."""
        limiter = self.request.app[stores_key].rates
        try:
            await limiter.check_passed(self.client, _limits_of(self.request), self.slot)
        except (RedisError, TimeoutError, OSError) as exc:
            log.warning("auth_slot_release_failed", error=type(exc).__name__)

    async def failed(self) -> int:
        """The credential was wrong: count it. Returns seconds for a 429 when the check ran
        past the global budget (answer 429 then, not 401), else 0.

        Logs `auth_failures_limited` with the client's address when this failure uses up the
        client's budget: at most once per interval per client, not once per request.
        """
        limiter = self.request.app[stores_key].rates
        count = await limiter.check_failed(self.client, _limits_of(self.request), self.slot)
        if count.client_wait_ms > 0 or count.past_global:
            log.info(
                "auth_failures_limited",
                client=client_address(self.request),
                path=self.request.path,
                past_global=count.past_global,
                retry_after_s=_seconds(count.client_wait_ms),
            )
        return _seconds(count.client_wait_ms) if count.past_global else 0


def _limits_of(request: web.Request) -> FailureLimits:
    return limits(request.app[settings_key])


async def begin_check(request: web.Request, *, credential: bool = True) -> Check:
    """The limiter's word before a credential of `request` is looked at (see `Check`).

    Args:
        credential: False when the request carries none: only whether the client is refused
            is asked, nothing is reserved, and nothing needs reporting afterwards.

    Raises RedisError when Redis is unreachable: the callers' error handling answers 503, so
    no credential is ever checked unlimited.
    """
    client = client_network(request)
    rates = request.app[stores_key].rates
    slot = await rates.begin_check(client, _limits_of(request), reserve=credential)
    # A client with no recent failure is refused only because its budget is held by checks in
    # flight (many right tokens at once: an office's desks reconnecting after a deploy). Those
    # give their slots back within milliseconds, so wait for a slot rather than refuse: a
    # browser's EventSource does not retry after a 429. Once one of the checks in flight
    # fails, the client has a recent failure and the waiting ones are refused as before.
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_S
    while (
        credential
        and slot.wait_ms > 0
        and not slot.recent_failure
        and asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(IN_FLIGHT_RETRY_S)
        slot = await rates.begin_check(client, _limits_of(request), reserve=credential)
    if slot.wait_ms > 0:
        log.debug("auth_refused_before_check", path=request.path)
    return Check(request, client, slot)


def too_many_failures(retry_after_s: int) -> web.Response:
    """The JSON 429 of the API and /metrics, with `Retry-After`."""
    response = error_body(
        429,
        "too_many_requests",
        f"too many failed authentications from this address: retry in {retry_after_s} s",
    )
    response.headers[RETRY_AFTER] = str(retry_after_s)
    return response
