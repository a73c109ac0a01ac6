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

# --- contacts, timeline, outgoing, locks (storage/contacts.py, timeline.py, outgoing.py, locks.py)
# `contact_key` below is bot.phones.contact_key: phone digits (BR mobiles with the ninth digit),
# `u:<bsuid>`, or `x:<other>`.
TIMELINE_TTL_S = 90 * DAY_S
OUTGOING_TTL_S = 30 * DAY_S
# Statuses that arrive before `record_sent` (the webhook can beat the reply job's write) wait
# this long for it; the raw status stays in its claim for CLAIM_TTL_S anyway.
OUTGOING_PENDING_TTL_S = 2 * DAY_S
CONTACT_LOCK_TTL_S = 15


def contact(phone_number_id: str, contact_key: str) -> str:
    """HASH (no TTL: contacts are kept forever): one customer as seen by one number. Fields
    `name`, `wa_id`, `user_id`, `phone`, `email`, `city`, `document`, `extra` (JSON), and the
    epoch-ms times `first_seen`, `seen_at`, `last_inbound_at`, `last_interaction_at`."""
    return f"dl:ct:{phone_number_id}:{contact_key}"


def contacts_recent(phone_number_id: str) -> str:
    """ZSET (no TTL): a number's contact keys scored by last interaction (epoch ms)."""
    return f"dl:ctrecent:{phone_number_id}"


def contact_user_ids(phone_number_id: str) -> str:
    """HASH (no TTL): business-scoped user id -> contact key, so that a customer who hides
    their number behind a username later is still the same contact."""
    return f"dl:ctuid:{phone_number_id}"


def timeline(phone_number_id: str, contact_key: str) -> str:
    """ZSET, TTL TIMELINE_TTL_S (refreshed by each entry): message id -> Meta timestamp (s).
    Entries older than 90 days before the newest are trimmed on write."""
    return f"dl:tl:{phone_number_id}:{contact_key}"


def timeline_entries(phone_number_id: str, contact_key: str) -> str:
    """HASH, TTL TIMELINE_TTL_S, next to `timeline`: message id -> compact entry JSON."""
    return f"dl:tle:{phone_number_id}:{contact_key}"


def outgoing(message_id: str) -> str:
    """HASH, TTL OUTGOING_TTL_S (OUTGOING_PENDING_TTL_S until `record_sent`): a message
    deskline sent and its delivery state (storage/outgoing.py)."""
    return f"dl:out:{message_id}"


def contact_lock(phone_number_id: str, contact_key: str) -> str:
    """STRING, TTL CONTACT_LOCK_TTL_S: serialises the processing of one customer's messages
    (value: the holder's random token, for a safe release)."""
    return f"dl:lock:ct:{phone_number_id}:{contact_key}"


# --- outbox -------------------------------------------------------------------------------
# LIST (capped at SANDBOX_OUTBOX_MAX, newest first): what the sandbox outbox "sent".
SANDBOX_OUTBOX = "dl:sandbox:outbox"
SANDBOX_OUTBOX_MAX = 1000

# --- sends (jobs/replies.py) --------------------------------------------------------------
# A send's done-marker must outlive every retry of its job and every redelivery of the
# webhook that caused it.
SEND_DONE_TTL_S = 8 * DAY_S
# The in-progress claim only has to cover one attempt (Graph timeout x tenacity attempts).
SEND_CLAIM_TTL_S = 120


def send_done(natural_key: str) -> str:
    """STRING, TTL SEND_DONE_TTL_S: Meta's message id once a send was accepted, or
    "failed:<code>" once it failed for good. Written only after the outcome is known."""
    return f"dl:sent:{natural_key}"


def send_claim(natural_key: str) -> str:
    """STRING, TTL SEND_CLAIM_TTL_S: a worker is sending this right now (SET NX)."""
    return f"dl:sending:{natural_key}"


def send_order(phone_number_id: str, contact: str) -> str:
    """ZSET, TTL 1 day (refreshed): a contact's pending sends by enqueue time, so that replies
    leave in order even when an earlier one is being retried."""
    return f"dl:sendq:{phone_number_id}:{contact}"


# LIST (capped at FAILED_SENDS_MAX, newest first): sends Meta refused for good, for operators.
FAILED_SENDS = "dl:sends:failed"
FAILED_SENDS_MAX = 1000


def rate(name: str) -> str:
    """STRING, TTL = the limiter's period: GCRA theoretical arrival time (ms) of a rate limit."""
    return f"dl:rate:{name}"


# --- auto-reply throttle (storage/throttle.py) ---------------------------------------------
# Outlives the longest cooldown admins may set (auto_reply_cooldown_minutes, at most 30 days).
THROTTLE_TTL_S = 31 * DAY_S


def auto_reply_mark(phone_number_id: str, contact: str, kind: str) -> str:
    """HASH {period, at_ms}, TTL THROTTLE_TTL_S: the last auto-reply of `kind` to a contact."""
    return f"dl:ar:{phone_number_id}:{contact}:{kind}"


def agent_active(phone_number_id: str, contact: str) -> str:
    """STRING, TTL = the quiet time after an agent's message: while it exists, no auto-reply
    interrupts a conversation an agent is having with this contact."""
    return f"dl:agent-active:{phone_number_id}:{contact}"


# --- numbers, agents, tokens, audit (storage/numbers.py, agents.py, audit.py) -------------
def number(phone_number_id: str) -> str:
    """HASH (no TTL): a number's settings. Fields `doc` (the settings document as admins set
    it, JSON), `version` (incremented by every change, kept after a DELETE so that a version is
    never reused), `updated_at`, `updated_by`. No `doc` field means the number is not served.
    """
    return f"dl:number:{phone_number_id}"


# An audit log keeps the latest changes; older ones are dropped.
NUMBER_AUDIT_MAX = 1000


def number_audit(phone_number_id: str) -> str:
    """LIST (no TTL, capped at NUMBER_AUDIT_MAX, newest first): changes of a number's settings,
    one JSON entry each. Kept after the number is deleted (the deletion is its last entry)."""
    return f"dl:number:{phone_number_id}:audit"


def number_agents(phone_number_id: str) -> str:
    """SET (no TTL): ids of the agents attached to a number (routing reads it)."""
    return f"dl:number:{phone_number_id}:agents"


# SET (no TTL): every agent id.
AGENTS = "dl:agents"


def agent(agent_id: str) -> str:
    """HASH (no TTL): an agent. Fields `name`, `numbers` (JSON list), `slots`, `role`, `status`,
    `status_changed_at`, `updated_at`."""
    return f"dl:agent:{agent_id}"


def agent_tokens(agent_id: str) -> str:
    """HASH (no TTL): an agent's live tokens, token id -> JSON {hash, created_at, created_by}."""
    return f"dl:agent:{agent_id}:tokens"


def token(token_hash: str) -> str:
    """STRING (no TTL): the agent id a token (by its SHA-256 hex digest) authenticates.
    Deleted when the token is revoked or its agent deleted."""
    return f"dl:token:{token_hash}"
