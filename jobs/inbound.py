"""process_inbound_message: the first job of every inbound message."""

from __future__ import annotations

from typing import Any

import structlog

from jobs import deps_from

log = structlog.get_logger(__name__)


async def process_inbound_message(ctx: dict[str, Any], wamid: str) -> str:
    """Load the claimed message and apply the number's rules.

    Idempotent on `wamid`: every effect it triggers is keyed by it.
    """
    deps = deps_from(ctx)
    item = await deps.stores.messages.inbound_raw(wamid)
    if item is None:
        log.warning("inbound_claim_missing", wamid=wamid)
        return "missing"
    log.info("inbound_processed", wamid=wamid, rules="none")
    return "no_rules"
