"""mark_read: read statuses (and typing indicators) sent to WhatsApp for the desk (issue 19)."""

from __future__ import annotations

from typing import Any

import structlog
from arq import Retry

from bot.domain.errors import PermanentError, TransientError
from jobs import deps_from

log = structlog.get_logger(__name__)


async def mark_read(ctx: dict[str, Any], phone_number_id: str, wamid: str, typing: bool) -> str:
    """Mark the inbound message `wamid` read on WhatsApp; with `typing`, show the typing
    indicator too (bot.services.receipts queues it).

    Check done → send → mark done (STYLE.md 2.3), idempotent on `keys.read_receipt`: a plain
    read of a message already marked sends nothing. A typing indicator always goes (it is
    throttled before it is queued) and is not retried: late, it would show "typing…" when
    nobody types. A read status Meta refuses for good (a message older than 30 days) is marked
    done too: trying again on every opening cannot help.

    Returns:
        "read", "typing", "duplicate", "refused" or "dropped" (a typing indicator that failed).

    Raises:
        Retry: a transient Graph failure of a read status.
    """
    deps = deps_from(ctx)
    receipts = deps.stores.receipts
    if not typing and await receipts.is_read(phone_number_id, wamid):
        return "duplicate"
    try:
        await deps.outbox.mark_read(phone_number_id, wamid, typing=typing)
    except TransientError as exc:
        if typing:
            log.info("typing_indicator_dropped", message_id=wamid, code=exc.code)
            return "dropped"
        raise Retry(defer=5 * int(ctx.get("job_try", 1))) from exc
    except PermanentError as exc:
        log.warning("read_status_refused", message_id=wamid, code=exc.code)
        await receipts.mark_read(phone_number_id, wamid)
        return "refused"
    await receipts.mark_read(phone_number_id, wamid)
    log.info("read_status_sent", message_id=wamid, typing=typing)
    return "typing" if typing else "read"
