"""Every Redis key deskline writes, with its purpose and its TTL (like arq's constants.py).

Keys are `dl:<area>:<id>[:<sub>]`. Per-number keys carry the `phone_number_id`, so that numbers
can later be partitioned across Redis deployments by it. Build keys only through this module.
"""

from __future__ import annotations

DAY_S = 24 * 3600

# Meta redelivers for up to 7 days (WHATSAPP.md section 7); a claim must outlive that.
CLAIM_TTL_S = 8 * DAY_S

# --- intake -------------------------------------------------------------------------------
# SET of the phone_number_ids deskline serves (no TTL). Written by the numbers store, read by
# the intake script, which acknowledges but does not process changes for other numbers.
NUMBERS = "dl:numbers"


def inbound(wamid: str) -> str:
    """STRING, TTL CLAIM_TTL_S: the claim of one inbound message, holding the raw item as JSON.

    Written with SET NX by the intake script: its existence is what makes a redelivered webhook
    a no-op.
    """
    return f"dl:in:{wamid}"


def status_claim(claim_id: str) -> str:
    """STRING, TTL CLAIM_TTL_S: the claim of one status update, raw JSON.

    `claim_id` is "<outgoing message id>:<status>": Meta sends sent, delivered and read for one
    message, and may repeat each.
    """
    return f"dl:st:{claim_id}"


# LIST (capped at OTHER_EVENTS_MAX): raw webhook changes that are not messages or statuses
# (template status, account updates, value-level errors, other `object`s). Kept for operators.
OTHER_EVENTS = "dl:webhook:other"
OTHER_EVENTS_MAX = 1000

# HASH (no TTL): intake counters (`unknown_number`, ...), exported on /metrics.
INTAKE_STATS = "dl:stats:intake"

# HASH (no TTL): job outcomes, field `<function>:<outcome>`, exported on /metrics.
JOB_STATS = "dl:stats:jobs"

# --- outbox -------------------------------------------------------------------------------
# LIST (capped at SANDBOX_OUTBOX_MAX, newest first): what the sandbox outbox "sent".
SANDBOX_OUTBOX = "dl:sandbox:outbox"
SANDBOX_OUTBOX_MAX = 1000
