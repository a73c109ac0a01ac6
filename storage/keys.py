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
# `contact_key` below is bot.domain.phones.contact_key: phone digits (BR mobiles with the ninth
# digit),
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
    epoch-ms times `first_seen`, `seen_at`, `last_inbound_at`, `last_interaction_at`; imported
    extra columns as `x:<column>`; `f:email`, `f:city`, `f:document`, the folded values the
    listing filters read; `ixn`, the name's search tokens (see `contact_index`)."""
    return f"dl:ct:{phone_number_id}:{contact_key}"


def contacts_recent(phone_number_id: str) -> str:
    """ZSET (no TTL): a number's contact keys scored by last interaction (epoch ms)."""
    return f"dl:ctrecent:{phone_number_id}"


def contact_user_ids(phone_number_id: str) -> str:
    """HASH (no TTL): business-scoped user id -> contact key, so that a customer who hides
    their number behind a username later is still the same contact."""
    return f"dl:ctuid:{phone_number_id}"


def contact_index(phone_number_id: str) -> str:
    """ZSET (no TTL, like the contacts), every score 0: the contact search index of a number,
    members `<token>\\0<contact key>` (storage/search.py). Each contact hash keeps its name
    tokens (`ixn`) so that a change of name replaces exactly them."""
    return f"dl:ctix:{phone_number_id}"


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


# --- worker wake-up (bot/runtime/arq_worker.py) -----------------------------------------------
# STRING, TTL 3 x the idle poll period (refreshed by each idle poll): set while some worker
# waits with nothing to do. The enqueue scripts (intake_submit, queue_enqueue_job) delete it
# and PUBLISH on the channel of the same name, so an idle worker starts a new job at once
# instead of polling every 50 ms; while workers are busy the key is absent and enqueues
# publish nothing.
WORKER_IDLE = "dl:worker:idle"


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


# --- tickets and routing (storage/tickets.py) ---------------------------------------------
# The routing scripts build the per-agent and per-ticket keys below from their prefixes
# (`ticket("")`, ...), so every id-suffixed key here ends with its id.
# Closed tickets are kept for the conversation history (3 months) and a little more.
TICKET_TTL_S = 100 * DAY_S

# STRING counter (no TTL): the one sequence of the ticket ids of every number, before ids
# took their number's own (`ticket_seq`); no longer written, named so tools scanning
# `ticket("")` skip it.
TICKET_SEQ = "dl:tk:seq"
# STRING counter (no TTL): the order of assignments ("whose last assignment is oldest").
ASSIGN_SEQ = "dl:tk:assignseq"
# HASH (no TTL): agent id -> ASSIGN_SEQ value of the agent's last assignment.
LAST_ASSIGNED = "dl:tk:lastassigned"
# SET (no TTL): agents who have held a ticket since the last sweep; the sweep removes those
# holding none (in the script that checks, so a concurrent assignment is never missed).
TICKET_HOLDERS = "dl:tk:holders"
# Not a key: waiting tickets one drain looks at per number, and the most one sweep call moves
# or closes (the ticket scripts' `@DRAIN_BATCH@`). A drain stops early once no agent of the
# numbers has a free slot, so this only bounds a script over a long queue with exclusions.
DRAIN_BATCH = 200


def ticket_seq(phone_number_id: str) -> str:
    """STRING counter (no TTL): the number's sequence in its ticket ids (within a number, ids
    sort in creation order); per number, so an id reveals nothing of other numbers' volume."""
    return f"dl:tkseq:{phone_number_id}"


def ticket(ticket_id: str) -> str:
    """HASH, no TTL while the ticket is active, TICKET_TTL_S once closed: one ticket (status,
    agent, contact, epoch-ms times; see storage/tickets.py for the fields)."""
    return f"dl:tk:{ticket_id}"


def ticket_messages(ticket_id: str) -> str:
    """LIST, same TTL as its ticket: the ticket's messages in order, one JSON entry each
    (inbound wamids, agents' replies with their text)."""
    return f"dl:tkm:{ticket_id}"


def ticket_history(ticket_id: str) -> str:
    """LIST, same TTL as its ticket: created, routed, transferred, requeued, closed entries."""
    return f"dl:tkh:{ticket_id}"


def ticket_request(phone_number_id: str, natural_key: str) -> str:
    """STRING, TTL CLAIM_TTL_S (outlives Meta's redeliveries and job retries): the ticket a
    TicketRequest opened or was attached to. Its existence makes the request a no-op."""
    return f"dl:tknk:{phone_number_id}:{natural_key}"


def ticket_reply(message_id: str) -> str:
    """STRING, TTL CLAIM_TTL_S: an agent's reply (by its message id) was recorded on its
    ticket; recording it again is refused."""
    return f"dl:tkreply:{message_id}"


def open_ticket(phone_number_id: str, contact_key: str) -> str:
    """STRING (no TTL, deleted on close): the contact's active ticket on the number; at most
    one exists per contact per number."""
    return f"dl:tkopen:{phone_number_id}:{contact_key}"


def ticket_queue(phone_number_id: str) -> str:
    """ZSET (no TTL): the number's waiting tickets by place (epoch ms of the first message;
    ties by id). A ticket keeps its score when it comes back, so it keeps its place."""
    return f"dl:tkq:{phone_number_id}"


def tickets_idle(phone_number_id: str) -> str:
    """ZSET (no TTL): waiting tickets by their last sign of life (entered the queue, or the
    customer wrote), epoch ms: past `lost_after_minutes` they are lost."""
    return f"dl:tkidle:{phone_number_id}"


def tickets_unanswered(phone_number_id: str) -> str:
    """ZSET (no TTL): assigned tickets without a first reply by assignment time (epoch ms):
    past `reroute_after_minutes` they are routed again."""
    return f"dl:tkunans:{phone_number_id}"


def tickets_active(phone_number_id: str) -> str:
    """ZSET (no TTL): the number's tickets that are not closed, by creation (epoch ms)."""
    return f"dl:tkactive:{phone_number_id}"


def tickets_all(phone_number_id: str) -> str:
    """ZSET, TTL TICKET_TTL_S (refreshed by each new ticket; entries older than TICKET_TTL_S
    trimmed on write): every ticket of the number by creation (epoch ms)."""
    return f"dl:tkall:{phone_number_id}"


def agent_tickets(agent_id: str) -> str:
    """SET (no TTL): the tickets occupying an agent's slots (assigned, not closed)."""
    return f"dl:agtk:{agent_id}"


def portfolio(phone_number_id: str) -> str:
    """HASH (no TTL): contact key -> the agent who owns the customer (last served them, or
    set by an admin); routing offers the contact's tickets to that agent first."""
    return f"dl:portfolio:{phone_number_id}"


# --- history indexes and monitoring (written by the ticket scripts; storage/monitoring.py) --
# The history indexes below are trimmed on write to TICKET_TTL_S and expire TICKET_TTL_S after
# their last write, like the tickets they point at.


def tickets_by_agent(phone_number_id: str, agent_id: str) -> str:
    """ZSET, TTL TICKET_TTL_S (refreshed, trimmed on write): the number's tickets the agent
    held at some time, by creation (epoch ms); the history's `agent` filter."""
    return f"dl:tkag:{phone_number_id}:{agent_id}"


def tickets_by_tag(phone_number_id: str, tag: str) -> str:
    """ZSET, TTL TICKET_TTL_S (refreshed, trimmed on write): the number's tickets carrying
    the tag, by creation (epoch ms)."""
    return f"dl:tktag:{phone_number_id}:{tag}"


def tickets_by_outcome(phone_number_id: str, outcome: str) -> str:
    """ZSET, TTL TICKET_TTL_S (refreshed, trimmed on write): the number's closed tickets by
    their final status (closed, abandoned or lost), by creation (epoch ms)."""
    return f"dl:tkdone:{phone_number_id}:{outcome}"


# Monitoring counters are kept per quarter hour: every UTC offset in use is a multiple of 15
# minutes, so "today" in any zone is a whole run of buckets (bot/domain/monitoring.py).
MONITOR_BUCKET_MS = 15 * 60 * 1000
# Long enough for a week of daily figures; only today's are read now.
MONITOR_DAY_TTL_S = 8 * DAY_S


def monitor_day(phone_number_id: str, utc_day: int) -> str:
    """HASH, TTL MONITOR_DAY_TTL_S (refreshed by each write): a number's counters of one UTC
    day (`utc_day` = epoch ms // 86,400,000), fields `<metric>:<bucket>` with bucket = epoch ms
    // MONITOR_BUCKET_MS. Metrics: `s:<status>` tickets by status now, `t:<tag>` tagged
    tickets (both by creation bucket); `fr`, `frms`, `frbms`, `frmax`, `frbmax` first replies
    (count, wall and business ms, maxima); `rs`, `rsms`, `rsbms` replies to customer
    messages; `sv`, `svms`, `svbms` served tickets closed; `ac:<agent>` tickets closed in the
    agent's hands (all by the bucket they happened in)."""
    return f"dl:mond:{phone_number_id}:{utc_day}"


def monitor_waiting(phone_number_id: str) -> str:
    """ZSET (no TTL; members leave when assigned or closed): waiting tickets by when they last
    entered the queue (epoch ms): "longest time in queue"."""
    return f"dl:monq:{phone_number_id}"


def monitor_in_service(phone_number_id: str) -> str:
    """ZSET (no TTL; members leave when requeued or closed): assigned tickets that got their
    first reply, by first_response_at (epoch ms)."""
    return f"dl:monsvc:{phone_number_id}"


def monitor_tags(phone_number_id: str) -> str:
    """HASH (no TTL; fields removed at zero): tag -> tickets of the number not closed that
    carry it."""
    return f"dl:montags:{phone_number_id}"


# --- agents' event streams (storage/events.py) --------------------------------------------
# Events an agent can replay with Last-Event-ID: the latest ~AGENT_EVENTS_MAX, and the whole
# stream disappears AGENT_EVENTS_TTL_S after its last event.
AGENT_EVENTS_MAX = 1000
AGENT_EVENTS_TTL_S = 7 * DAY_S


def agent_events(agent_id: str) -> str:
    """STREAM, capped at ~AGENT_EVENTS_MAX, TTL AGENT_EVENTS_TTL_S (refreshed by each event):
    the agent's desk events (fields `type` and `data`, JSON), read by the SSE endpoint."""
    return f"dl:ev:{agent_id}"


# A conversation event (`message.in`, `message.status`) is published once per message and
# state: this long covers any retry of the job that publishes it (and Meta's redeliveries).
EVENT_ONCE_TTL_S = 8 * DAY_S


def event_once(name: str) -> str:
    """STRING, TTL EVENT_ONCE_TTL_S: set, in the same script as the XADDs, by the first publish
    of the conversation event `name` (`message.in:<wamid>`, `message.status:<id>:<status>`),
    so a retried job does not publish it again (storage/events.py `publish_once`)."""
    return f"dl:evonce:{name}"


def event_streams(user_id: str) -> str:
    """ZSET, TTL the latest heartbeat deadline (pushed back by every claim and heartbeat, so it
    goes with the user's last stream): the event streams (API and console SSE) the user (an
    agent id, or bot.domain.auth.BOOTSTRAP_ADMIN_ID) has open in any web process, stream id ->
    heartbeat deadline (epoch ms, Redis's clock). A stream's place is dropped once its deadline
    passed, so those of a crashed process free themselves (handlers/sse.py sets the TTL)."""
    return f"dl:evopen:{user_id}"


# --- after-hours contacts, callbacks, active messages (storage/after_hours.py) -------------
# A row is listed for 7 days after the contact's first message of its closed period.
AFTER_HOURS_KEEP_S = 7 * DAY_S
# One template goes to one contact at most once within this time (unless forced).
ACTIVE_MESSAGE_REPEAT_S = DAY_S
# A callback record outlives its opening (or its due time) by this much: longer than Meta's
# redelivery horizon, so a redelivered "notify me" tap can never schedule a second callback.
CALLBACK_KEEP_S = 8 * DAY_S
# A callback with no opening within a year waits this long for a schedule change.
CALLBACK_UNSCHEDULED_TTL_S = 367 * DAY_S


def after_hours_rows(phone_number_id: str) -> str:
    """ZSET, TTL AFTER_HOURS_KEEP_S + 1 day (refreshed by each write): a number's after-hours
    rows, row id -> contacted_at (epoch ms). Members older than 7 days are dropped on write and
    skipped on read, so correctness never waits for a purge."""
    return f"dl:ah:{phone_number_id}"


def after_hours_row(phone_number_id: str, row_id: str) -> str:
    """HASH, TTL until contacted_at + AFTER_HOURS_KEEP_S: one contact's row for one closed
    period (contact, wa_id, name, phone, period, first/last message, messages, requested_return,
    message_sent, active message, callback mirror)."""
    return f"dl:ah:{phone_number_id}:{row_id}"


def after_hours_seen(phone_number_id: str, row_id: str) -> str:
    """SET, same TTL as its row: the wamids counted in the row (a redelivery counts once)."""
    return f"dl:ah:{phone_number_id}:{row_id}:seen"


def after_hours_callback(phone_number_id: str, row_id: str) -> str:
    """HASH, TTL CALLBACK_KEEP_S past its due time or opening (CALLBACK_UNSCHEDULED_TTL_S
    while it has no due time): the callback a contact asked for, `status` pending | opened."""
    return f"dl:ahcb:{phone_number_id}:{row_id}"


def after_hours_callbacks(phone_number_id: str) -> str:
    """ZSET, TTL CALLBACK_UNSCHEDULED_TTL_S (refreshed by each write): a number's pending
    callbacks, row id -> due time (epoch ms, +inf when no opening within a year)."""
    return f"dl:ahcb:{phone_number_id}"


def active_message_sent(phone_number_id: str, contact_key: str, template: str) -> str:
    """STRING, TTL ACTIVE_MESSAGE_REPEAT_S: the natural key of the last send of `template` to
    this contact; while it exists the same template is refused (409) unless forced."""
    return f"dl:ahsent:{phone_number_id}:{contact_key}:{template}"


# --- message templates (storage/templates.py) ----------------------------------------------
# Templates read from the Graph API are re-read when older than this...
TEMPLATES_FRESH_S = 3600
# ...and the last copy is kept this long, to serve when the Graph API is unreachable.
TEMPLATES_CACHE_TTL_S = 7 * DAY_S


def graph_templates(waba_id: str) -> str:
    """STRING JSON {fetched_at_ms, templates}, TTL TEMPLATES_CACHE_TTL_S: the WABA's message
    templates as last read from `GET /{waba_id}/message_templates`."""
    return f"dl:tpl:graph:{waba_id}"


# HASH (no TTL): templates registered by admins (no WABA access), "<name>:<language>" -> JSON.
REGISTERED_TEMPLATES = "dl:tpl:registered"

# --- dead letters (storage/dead_letters.py) -------------------------------------------------
# HASH id → JSON of a job that failed for good, and ZSET id → failure time (newest last).
# Capped at DEAD_LETTERS_MAX entries; kept until replayed or dropped by an operator.
DEAD_LETTERS = "dl:dead:jobs"
DEAD_LETTERS_INDEX = "dl:dead:index"
DEAD_LETTERS_MAX = 10_000

# --- web console sessions (storage/console_sessions.py) ------------------------------------
# A session dies after CONSOLE_SESSION_IDLE_S without use (every use pushes the TTL back) and
# CONSOLE_SESSION_MAX_S after sign-in whatever its use (checked against its `created_at`).
CONSOLE_SESSION_IDLE_S = 12 * 3600
CONSOLE_SESSION_MAX_S = 7 * DAY_S


def console_session(session_digest: str) -> str:
    """HASH, TTL CONSOLE_SESSION_IDLE_S (sliding): one signed-in console session, keyed by the
    SHA-256 of the cookie's session id (a Redis dump reveals no live cookie). Fields
    `token_hash` (the API token's digest, never the token), `caller`, `csrf`, `created_at`
    (epoch ms) and `number` (the number selected in the header)."""
    return f"dl:console:session:{session_digest}"


# --- quick replies (storage/quick_replies.py) ----------------------------------------------
# `owner` is the user's id (an agent id, or bot.domain.auth.BOOTSTRAP_ADMIN_ID): replies belong to a
# user, not to a number. No TTL: kept until their owner deletes them.
def quick_reply_categories(owner: str) -> str:
    """HASH (no TTL): category id -> JSON {id, name, key, created_at, updated_at}; `key` is
    the name's natural key (bot.domain.quick_replies.natural_key)."""
    return f"dl:qr:{owner}:cats"


def quick_reply_names(owner: str) -> str:
    """HASH (no TTL): natural key of a category name -> category id (names are unique)."""
    return f"dl:qr:{owner}:names"


def quick_replies(owner: str, category_id: str) -> str:
    """HASH (no TTL, deleted with its category): reply id -> JSON {id, category_id, title,
    text, key, created_at, updated_at}."""
    return f"dl:qr:{owner}:cat:{category_id}"


def quick_reply_titles(owner: str, category_id: str) -> str:
    """HASH (no TTL, deleted with its category): natural key of a title -> reply id."""
    return f"dl:qr:{owner}:cat:{category_id}:titles"


# --- internal notes (storage/notes.py) -----------------------------------------------------
# Notes are the desk's own: never sent to the customer. At most NOTES_MAX per ticket or
# contact, so that a page of them is one HGETALL.
NOTES_MAX = 500
# A contact's notes live like its timeline: 90 days after the last one, and a note older than
# that is dropped (at the next write) and never shown.
CONTACT_NOTES_TTL_S = TIMELINE_TTL_S


def ticket_notes(ticket_id: str) -> str:
    """HASH, same TTL as its ticket (none while active; the close script expires it with the
    ticket, TICKET_TTL_S): note id -> JSON {id, author, at (epoch ms), text}."""
    return f"dl:tknotes:{ticket_id}"


def contact_notes(phone_number_id: str, contact_key: str) -> str:
    """HASH, TTL CONTACT_NOTES_TTL_S (refreshed by each note; older notes dropped on write):
    note id -> JSON {id, author, at (epoch ms), text}."""
    return f"dl:cnotes:{phone_number_id}:{contact_key}"


# --- transfer requests (storage/transfer_requests.py) --------------------------------------
# A request is kept this long after it was made or answered (its answer can be read back, and
# a retried accept finds it answered); the ticket's history keeps the record for good.
TRANSFER_REQUEST_KEEP_S = DAY_S


def transfer_request(ticket_id: str) -> str:
    """HASH, TTL the request's expiry + TRANSFER_REQUEST_KEEP_S (reset on answer): the
    ticket's latest transfer request, fields `id`, `requester`, `holder`, `status` (pending,
    accepted, declined, expired), `created_at`, `expires_at`, `answered_by`, `answered_at`
    (epoch ms). One per ticket: a new request replaces one no longer pending."""
    return f"dl:tkxfer:{ticket_id}"


# --- what a desk user has seen of a ticket (storage/seen.py) -------------------------------
# A marker outlives any open ticket's working life; a ticket nobody opened for this long shows
# all its customer messages as unread again, which is what the desk would want anyway.
SEEN_TTL_S = 30 * DAY_S


def ticket_seen(caller_id: str, ticket_id: str) -> str:
    """STRING, TTL SEEN_TTL_S (reset on each opening): how many of the ticket's messages
    (its list `ticket_messages`, in join order) `caller_id` had on screen when they last
    opened it; the customer messages after that index are their unread ones."""
    return f"dl:seen:{caller_id}:{ticket_id}"


# --- read receipts and typing (storage/receipts.py, issue 19) -----------------------------
# Meta accepts a read status for messages up to 30 days old; a marker that outlives that would
# guard nothing.
READ_RECEIPT_TTL_S = 30 * DAY_S
# WhatsApp shows a typing indicator for up to 25 seconds (or until the next message): one per
# 20 seconds keeps it on while an agent types without a Graph call per keystroke.
TYPING_THROTTLE_S = 20


def read_receipt(phone_number_id: str, wamid: str) -> str:
    """STRING, TTL READ_RECEIPT_TTL_S: the inbound message `wamid` was marked read on WhatsApp.

    Written only after Meta accepted the read status (check done → send → mark done), so a
    ticket opened again does not call Graph again.
    """
    return f"dl:read:{phone_number_id}:{wamid}"


def typing_throttle(phone_number_id: str, ticket_id: str) -> str:
    """STRING, TTL TYPING_THROTTLE_S: a typing indicator was asked for on this ticket lately
    (SET NX: at most one per TYPING_THROTTLE_S per ticket)."""
    return f"dl:typing:{phone_number_id}:{ticket_id}"
