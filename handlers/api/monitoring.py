"""`GET /api/v1/monitoring`: the live desk figures of one number or of all the caller's.

Who may: admins (every served number) and managers (the numbers they are attached to).
Agents get 403: the figures show every agent's status and load, a supervisor's view; agents
see their own tickets through the tickets API. Definitions: bot/domain/monitoring.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain.errors import NotFoundError
from bot.domain.monitoring import build_monitoring, can_monitor, day_start
from handlers.api import model_response
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import MonitoringQuery, read_query


async def get_monitoring(request: web.Request) -> web.Response:
    """Today's figures and the live queue, service and agents, per number and in total.

    `number` narrows to one number (404 when it is not served, 403 when the caller does not
    manage it); without it, every number the caller manages (admins: all). `details` caps
    the tickets listed per detail list (0-100, default 20). Read-only: a handful of Redis
    round trips whatever the number of tickets stored.
    """
    caller = caller_of(request)
    stores = request.app[stores_key]
    q = read_query(request, MonitoringQuery)
    number = q.number
    if number is not None:
        forbid_unless(can_monitor(caller, number), "monitoring: admins and managers of the number")
        scope = [number]
    else:
        forbid_unless(
            caller.is_admin or caller.role == "manager", "monitoring: admins and managers"
        )
        scope = await stores.numbers.ids() if caller.is_admin else sorted(caller.numbers)
    served = await stores.numbers.get_many(scope)
    if number is not None and not served:
        raise NotFoundError(f"number {number} not found")
    configs = {s.phone_number_id: s.config for s in served}
    now = request.app[clock_key].now()
    snapshots = await stores.monitoring.snapshots(
        [(pnid, day_start(config.zone, now)) for pnid, config in configs.items()],
        now=now,
        detail=q.details,
    )
    return model_response(build_monitoring(snapshots, dict(configs), now))
