"""Budgets of failed authentications and the limiter's answers (the limiter runs in Redis:
storage/ratelimit.py; the policy around it: handlers/auth_failures.py)."""

from __future__ import annotations

from dataclasses import dataclass


def interval_ms(per_second: float) -> int:
    return max(1, round(1000 / per_second))


@dataclass(frozen=True, slots=True)
class FailureLimits:
    """Budgets of failed authentications: per client a burst then a sustained rate, and one
    rate (with a burst) across all clients."""

    client_per_second: float
    client_burst: int
    global_per_second: float
    global_burst: int

    def args(self) -> list[int]:
        return [
            interval_ms(self.client_per_second),
            self.client_burst,
            interval_ms(self.global_per_second),
            self.global_burst,
        ]


@dataclass(frozen=True, slots=True)
class CheckSlot:
    """The limiter's answer before a credential check.

    Attributes:
        wait_ms: 0 when the check may run; else how long the client must wait first.
        reserved: the check holds a slot of the client's budget.
        global_slot: the check holds a slot of the global budget (False when the global
            budget was spent but the client, having no recent failure, is checked anyway).
        recent_failure: when refused, whether the client failed recently (else its budget is
            only held by checks in flight, which give their slots back on success).
    """

    wait_ms: int
    reserved: bool
    global_slot: bool
    recent_failure: bool = False


@dataclass(frozen=True, slots=True)
class FailureCount:
    """After a failed check.

    Attributes:
        client_wait_ms: > 0 when the client has used up its budget: its next check waits.
        past_global: the check ran while the global budget was spent.
    """

    client_wait_ms: int
    past_global: bool
