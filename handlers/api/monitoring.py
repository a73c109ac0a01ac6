"""`GET /api/v1/monitoring`: the live desk figures of one number or of all the caller's.

Who may: admins (every served number) and managers (the numbers they are attached to).
Agents get 403: the figures show every agent's status and load, a supervisor's view; agents
see their own tickets through the tickets API. Definitions: bot/domain/monitoring.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain.config import is_valid_id
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.monitoring import (
    DETAIL_DEFAULT,
    DETAIL_MAX,
    build_monitoring,
    can_monitor,
    day_start,
)
from handlers.api import model_response
from handlers.api.auth import caller_of, forbid_unless


async def get_monitoring(request: web.Request) -> web.Response:
    """Today's figures and the live queue, service and agents, per number and in total.

    `number` narrows to one number (404 when it is not served, 403 when the caller does not
    manage it); without it, every number the caller manages (admins: all). `details` caps
    the tickets listed per detail list (0-100, default 20). Read-only: a handful of Redis
    round trips whatever the number of tickets stored.
    """
    caller = caller_of(request)
    stores = request.app[stores_key]
    number = request.query.get("number")
    if number is not None:
        if not is_valid_id(number):
            raise InvalidInputError("number must be 1-64 characters of A-Z a-z 0-9 _ . -", "number")
        forbid_unless(can_monitor(caller, number), "monitoring: admins and managers of the number")
        scope = [number]
    else:
        forbid_unless(
            caller.is_admin or caller.role == "manager", "monitoring: admins and managers"
        )
        scope = await stores.numbers.ids() if caller.is_admin else sorted(caller.numbers)
    raw_details = request.query.get("details", str(DETAIL_DEFAULT))
    if not raw_details.isdigit() or int(raw_details) > DETAIL_MAX:
        raise InvalidInputError(f"details must be an integer from 0 to {DETAIL_MAX}", "details")
    served = await stores.numbers.get_many(scope)
    if number is not None and not served:
        raise NotFoundError(f"number {number} not found")
    configs = {s.phone_number_id: s.config for s in served}
    now = request.app[clock_key].now()
    snapshots = await stores.monitoring.snapshots(
        [(pnid, day_start(config.zone, now)) for pnid, config in configs.items()],
        now=now,
        detail=int(raw_details),
    )
    return model_response(build_monitoring(snapshots, dict(configs), now))
