"""Every operation served under `/api/v1`, declared once: `setup_api` registers one route per
entry of `OPERATIONS` and the OpenAPI document (`GET /api/v1/openapi.json`) describes exactly
these entries, so an operation removed here is gone from both.

An entry names its handler, who may call it, and the models of its query string
(`handlers.api.queries`, which the handler reads with `read_query`), body and answers. Path
placeholders are described by `PATH_PARAMS` unless the entry overrides one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot.domain.config import (
    ID_PATTERN,
    AgentInput,
    AgentPage,
    AgentRecord,
    AuditPage,
    HoursAnswer,
    IssuedToken,
    NumberConfig,
    NumberPage,
    NumberView,
    StatusInput,
    TokenPage,
)
from bot.domain.contact_view import ActiveMessageQueued, ContactConversation
from bot.domain.contacts import ContactHit, ContactPage, ImportReport, SearchPage, TimelinePage
from bot.domain.history import HistoryPage
from bot.domain.monitoring import Monitoring
from bot.domain.notes import Note, NoteInput, NotePage
from bot.domain.quick_replies import (
    Category,
    CategoryInput,
    CategoryPage,
    QuickReply,
    ReplyInput,
    ReplyPage,
)
from bot.domain.receipts import TypingView
from bot.domain.tickets import (
    OwnerInput,
    OwnerView,
    SentReply,
    Ticket,
    TicketCloseInput,
    TicketDetail,
    TicketPage,
    TicketReplyInput,
    TicketTagsInput,
    TicketTransferInput,
)
from bot.domain.transfers import TransferRequest
from bot.services.after_hours import (
    ROW_ID_PATTERN,
    ActiveMessageInput,
    AfterHoursContact,
    AfterHoursPage,
)
from bot.services.templates import TemplateInput, TemplatePage, TemplateView
from handlers.api import (
    after_hours,
    agents,
    contact_view,
    contacts,
    docs,
    events,
    history,
    monitoring,
    notes,
    numbers,
    quick_replies,
    templates,
    tickets,
    transfer_requests,
)
from handlers.api.openapi import ErrorResponse
from handlers.api.queries import (
    CONTACT_ID_MAX,
    AfterHoursQuery,
    AuditQuery,
    ConversationQuery,
    EventsQuery,
    HistoryQuery,
    HoursQuery,
    ImportQuery,
    ImportToQuery,
    ListContactsQuery,
    MonitoringQuery,
    QuickRepliesQuery,
    SearchContactsQuery,
    TicketsQuery,
    TimelineQuery,
)
from handlers.api.spec import Operation, PathParam

_ID_SCHEMA: Final = {"type": "string", "pattern": ID_PATTERN}
# A template is named in a path as in an active message's body: the same field schemas.
_TEMPLATE_FIELDS: Final = ActiveMessageInput.model_json_schema()["properties"]

# The placeholders' schemas, by name; an operation overrides one with `path_params`.
PATH_PARAMS: Final[Mapping[str, PathParam]] = {
    p.name: p
    for p in (
        PathParam("phone_number_id", _ID_SCHEMA, "Meta's phone_number_id"),
        PathParam("agent_id", _ID_SCHEMA),
        PathParam("token_id", {"type": "string", "pattern": "^[0-9a-f]{1,64}$"}),
        PathParam("id", {"type": "string", "pattern": ROW_ID_PATTERN}, "the row's id"),
        PathParam("name", {"type": "string", "pattern": _TEMPLATE_FIELDS["template"]["pattern"]}),
        PathParam(
            "language",
            {"type": "string", "pattern": _TEMPLATE_FIELDS["language"]["pattern"]},
            "Meta's code: pt_BR",
        ),
        PathParam("ticket_id", _ID_SCHEMA),
        PathParam(
            "wa_id",
            {"type": "string", "minLength": 1, "maxLength": CONTACT_ID_MAX},
            "the contact's wa_id (any spelling of the number), user id or contact key",
        ),
        PathParam("category_id", _ID_SCHEMA),
        PathParam("reply_id", _ID_SCHEMA),
        PathParam("request_id", _ID_SCHEMA, "the transfer request's id"),
    )
}
# A portfolio is set by the wa_id Meta gives (tickets.put_owner checks 1-64 characters).
_OWNER_WA_ID: Final = PathParam("wa_id", {"type": "string", "minLength": 1, "maxLength": 64})

# Who may call an operation (the handlers check it through bot.domain.auth).
ANYONE: Final = "any authenticated caller"
ATTACHED: Final = "whoever is attached to the number (admins: any number)"
CHANGERS: Final = "admins; managers of the number"
ADMINS: Final = "admins"
TICKET_MANAGERS: Final = "the ticket's agent, managers of its number, admins"
OWNER: Final = "the caller, on their own quick replies (each caller has their own)"

_CSV_HELP: Final = (
    "A CSV with a header row: `phone` required; `name`, `email`, `city`, `document` "
    "known (also `telefone`, `nome`, `cidade`, `cpf`, ...); other columns kept in "
    "`extra`. Delimiter `,`, `;` or tab; UTF-8 or Windows-1252; at most 2 MiB and "
    "20,000 rows. Send it as the body (`text/csv`) or as the `file` part of a "
    "multipart form. Valid rows are stored, others reported by row (the header is "
    "row 1) and column; the same file again changes nothing. Imported contacts do "
    "not open the 24-hour window."
)

_N = "/numbers/{phone_number_id}"
_QR = "/quick-replies/categories"

NUMBER_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/numbers", numbers.list_numbers, "listNumbers",
              "The numbers the caller may read", "numbers",
              who="anyone: the numbers they are attached to (admins: every number)",
              responses={200: NumberPage}),
    Operation("PUT", _N, numbers.put_number, "putNumber",
              "Create or replace a number's settings", "numbers", who=CHANGERS,
              body=NumberConfig, responses={200: NumberView, 201: NumberView}),
    Operation("GET", _N, numbers.get_number, "getNumber",
              "A number's settings, defaults filled, with its version", "numbers", who=ATTACHED,
              responses={200: NumberView}),
    Operation("PATCH", _N, numbers.patch_number, "patchNumber",
              "Change only the fields given (JSON Merge Patch, RFC 7386)", "numbers",
              who=CHANGERS, body="merge-patch", responses={200: NumberView},
              description="Nested objects merge, null removes a field (back to its default), "
              "arrays are replaced whole. Invalid results are refused whole (422)."),
    Operation("DELETE", _N, numbers.delete_number, "deleteNumber",
              "Stop serving a number", "numbers", who=ADMINS, responses={204: None}),
    Operation("GET", f"{_N}/hours", numbers.get_hours, "getNumberHours",
              "Whether the number is open at an instant, and when it next opens", "numbers",
              who=ATTACHED, query=HoursQuery, responses={200: HoursAnswer}),
    Operation("GET", f"{_N}/audit", numbers.get_audit, "getNumberAudit",
              "Changes of a number's settings, newest first", "numbers", who=CHANGERS,
              query=AuditQuery, responses={200: AuditPage}),
    Operation("GET", f"{_N}/after-hours-contacts", after_hours.list_contacts,
              "listAfterHoursContacts",
              "Contacts who wrote while closed, last 7 days, newest first", "after-hours",
              who=ATTACHED, query=AfterHoursQuery, responses={200: AfterHoursPage}),
    Operation("POST", f"{_N}/after-hours-contacts/{{id}}/active-message",
              after_hours.send_active_message, "sendActiveMessage",
              "Queue an approved template to an after-hours contact", "after-hours",
              who=ATTACHED, body=ActiveMessageInput, responses={202: AfterHoursContact},
              description="422 names `template`, `variables` or `variables[i]`; 409 "
              "`already_sent` when the template went to this contact within 24 hours, unless "
              "`force` is true. `message_sent` is true from the 202 on."),
    Operation("GET", "/templates", templates.list_templates, "listTemplates",
              "Templates active messages may use (Graph API, cached; registered)", "templates",
              who=ANYONE, responses={200: TemplatePage}),
    Operation("POST", "/templates/refresh", templates.refresh_templates, "refreshTemplates",
              "Re-read the WABA's templates from the Graph API", "templates",
              who="admins, managers", responses={200: TemplatePage, 502: ErrorResponse}),
    Operation("PUT", "/templates/{name}/{language}", templates.put_template, "putTemplate",
              "Register a template by hand, when there is no WABA access", "templates",
              who=ADMINS, body=TemplateInput, responses={200: TemplateView, 201: TemplateView}),
    Operation("DELETE", "/templates/{name}/{language}", templates.delete_template,
              "deleteTemplate", "Forget a registered template", "templates", who=ADMINS,
              responses={204: None}),
)  # fmt: skip

AGENT_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/agents", agents.list_agents, "listAgents",
              "The agents the caller may see", "agents",
              who="admins: every agent; managers: the agents of their numbers; agents: "
              "themselves", responses={200: AgentPage}),
    Operation("PUT", "/agents/{agent_id}", agents.put_agent, "putAgent",
              "Create or replace an agent", "agents", who=ADMINS, body=AgentInput,
              responses={200: AgentRecord, 201: AgentRecord}),
    Operation("GET", "/agents/{agent_id}", agents.get_agent, "getAgent", "An agent", "agents",
              who="admins, the agent, managers of one of its numbers",
              responses={200: AgentRecord}),
    Operation("DELETE", "/agents/{agent_id}", agents.delete_agent, "deleteAgent",
              "Delete an agent and revoke its tokens", "agents", who=ADMINS,
              responses={204: None}),
    Operation("PUT", "/agents/{agent_id}/status", agents.put_status, "putAgentStatus",
              "Set an agent's status", "agents",
              who="the agent, admins, managers of all its numbers", body=StatusInput,
              responses={200: AgentRecord}),
    Operation("POST", "/agents/{agent_id}/tokens", agents.issue_token, "issueAgentToken",
              "Issue a bearer token for an agent, shown once", "agents", who=ADMINS,
              responses={201: IssuedToken}),
    Operation("GET", "/agents/{agent_id}/tokens", agents.list_tokens, "listAgentTokens",
              "An agent's live tokens, by id", "agents", who=ADMINS,
              responses={200: TokenPage}),
    Operation("DELETE", "/agents/{agent_id}/tokens", agents.revoke_tokens, "revokeAgentTokens",
              "Revoke every token of an agent", "agents", who=ADMINS, responses={204: None}),
    Operation("DELETE", "/agents/{agent_id}/tokens/{token_id}", agents.revoke_token,
              "revokeAgentToken", "Revoke one token of an agent", "agents", who=ADMINS,
              responses={204: None}),
)  # fmt: skip

CONTACT_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/contacts", contacts.search_contacts, "searchContacts",
              "Contacts by name or phone across the caller's numbers", "contacts",
              who="anyone: only the numbers they are attached to are searched (admins: all)",
              query=SearchContactsQuery, responses={200: SearchPage},
              description="Each hit names its number, whether there is a history within 90 "
              "days, whether the 24-hour window is open and who serves the contact. Numbers "
              "the caller is not attached to are left out (403 only for an explicit `number`)."),
    Operation("POST", "/contacts/import", contacts.import_contacts_to, "importContactsTo",
              "Import contacts from a CSV into `number`", "contacts", who=ATTACHED,
              query=ImportToQuery, body="csv", responses={200: ImportReport, 413: ErrorResponse},
              description=_CSV_HELP),
    Operation("GET", f"{_N}/contacts", contacts.list_contacts, "listContacts",
              "A number's contacts, latest interaction first, filtered", "contacts",
              who=ATTACHED, query=ListContactsQuery, responses={200: ContactPage}),
    Operation("POST", f"{_N}/contacts/import", contacts.import_contacts, "importContacts",
              "Import contacts from a CSV", "contacts", who=ATTACHED, query=ImportQuery,
              body="csv", responses={200: ImportReport, 413: ErrorResponse},
              description=_CSV_HELP),
    Operation("GET", f"{_N}/contacts/{{wa_id}}", contacts.get_contact, "getContact",
              "One contact of a number", "contacts", who=ATTACHED,
              responses={200: ContactHit}),
    Operation("GET", f"{_N}/contacts/{{wa_id}}/timeline", contacts.get_timeline, "getTimeline",
              "A contact's messages in and out of the last 90 days", "contacts", who=ATTACHED,
              query=TimelineQuery, responses={200: TimelinePage}),
    Operation("GET", f"{_N}/contacts/{{wa_id}}/conversation", contact_view.get_conversation,
              "getContactConversation",
              "A contact's 90-day conversation across tickets, and how to resume it",
              "contacts", who=ATTACHED, query=ConversationQuery,
              responses={200: ContactConversation},
              description="Messages and notes oldest first (`q` searches their text), the "
              "current ticket, the 24-hour window and `resume.case`: `reply`, "
              "`window_expired`, `not_in_service`, `no_history` or `served_by_another` "
              "(with the ticket to request the transfer of)."),
    Operation("POST", f"{_N}/contacts/{{wa_id}}/active-message",
              contact_view.send_active_message, "sendContactActiveMessage",
              "Queue an approved template to a contact", "contacts", who=ATTACHED,
              body=ActiveMessageInput, responses={202: ActiveMessageQueued},
              description="The after-hours send's rules: 422 names `template`, `variables` "
              "or `variables[i]`; 409 `already_sent` when the template went to this contact "
              "within 24 hours (from either screen), unless `force` is true."),
)  # fmt: skip

QUICK_REPLY_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/quick-replies", quick_replies.get_book, "getQuickReplies",
              "The caller's quick replies: categories by name, each with its replies",
              "quick-replies", who=OWNER, query=QuickRepliesQuery,
              responses={200: CategoryPage},
              description="Quick replies belong to the caller and are the same on every "
              "number they serve; `number` only checks that the caller serves it (403)."),
    Operation("POST", _QR, quick_replies.create_category, "createQuickReplyCategory",
              "Create a category (200 with the existing one when the name is taken)",
              "quick-replies", who=OWNER, body=CategoryInput,
              responses={200: Category, 201: Category}),
    Operation("GET", f"{_QR}/{{category_id}}", quick_replies.get_category,
              "getQuickReplyCategory", "A category with its replies", "quick-replies",
              who=OWNER, responses={200: Category}),
    Operation("PUT", f"{_QR}/{{category_id}}", quick_replies.put_category,
              "renameQuickReplyCategory", "Rename a category (409 name_taken)",
              "quick-replies", who=OWNER, body=CategoryInput, responses={200: Category}),
    Operation("DELETE", f"{_QR}/{{category_id}}", quick_replies.delete_category,
              "deleteQuickReplyCategory", "Delete a category and its replies",
              "quick-replies", who=OWNER, responses={204: None}),
    Operation("GET", f"{_QR}/{{category_id}}/replies", quick_replies.list_replies,
              "listQuickReplies", "A category's replies by title", "quick-replies", who=OWNER,
              responses={200: ReplyPage}),
    Operation("POST", f"{_QR}/{{category_id}}/replies", quick_replies.create_reply,
              "createQuickReply",
              "Add a reply (200 with the existing one for the same title and text; "
              "409 title_taken for another text)", "quick-replies", who=OWNER,
              body=ReplyInput, responses={200: QuickReply, 201: QuickReply}),
    Operation("GET", f"{_QR}/{{category_id}}/replies/{{reply_id}}", quick_replies.get_reply,
              "getQuickReply", "A reply", "quick-replies", who=OWNER,
              responses={200: QuickReply}),
    Operation("PUT", f"{_QR}/{{category_id}}/replies/{{reply_id}}", quick_replies.put_reply,
              "putQuickReply", "Replace a reply's title and text (409 title_taken)",
              "quick-replies", who=OWNER, body=ReplyInput, responses={200: QuickReply}),
    Operation("DELETE", f"{_QR}/{{category_id}}/replies/{{reply_id}}",
              quick_replies.delete_reply, "deleteQuickReply", "Delete a reply",
              "quick-replies", who=OWNER, responses={204: None}),
)  # fmt: skip

TICKET_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", f"{_N}/tickets", tickets.list_tickets, "listTickets",
              "The number's tickets, newest first (waiting ones in queue order)", "tickets",
              who=ATTACHED, query=TicketsQuery, responses={200: TicketPage},
              description="`open` means assigned to an agent; it is in service once "
              "`first_response_at` is set. `lost` and `abandoned` are closed tickets the "
              "customer left before an agent had them, or before the first reply."),
    Operation("PUT", f"{_N}/contacts/{{wa_id}}/owner", tickets.put_owner, "putContactOwner",
              "Set or clear (null) the contact's portfolio owner", "tickets", who=CHANGERS,
              body=OwnerInput, responses={200: OwnerView}, path_params=(_OWNER_WA_ID,)),
    Operation("GET", "/tickets/{ticket_id}", tickets.get_ticket, "getTicket",
              "A ticket with its messages and history", "tickets", who=ATTACHED,
              responses={200: TicketDetail}),
    Operation("POST", "/tickets/{ticket_id}/messages", tickets.reply, "replyToTicket",
              "The serving agent's text reply, queued to WhatsApp", "tickets",
              who="the agent holding the ticket", body=TicketReplyInput,
              responses={202: SentReply},
              description="409 `window_closed` outside the 24 hours after the customer's last "
              "message; 409 `served_by_another` naming the agent who holds the ticket; 409 "
              "`not_assigned` while it waits. An `Idempotency-Key` header makes retries safe."),
    Operation("POST", "/tickets/{ticket_id}/typing", tickets.typing, "ticketTyping",
              "Show the customer WhatsApp's typing indicator while the holder types",
              "tickets", who=ATTACHED, responses={202: TypingView},
              description="At most one indicator per 20 s per ticket, inside the 24-hour "
              "window, from the agent holding the ticket, when the number's "
              "`tickets.read_receipts` is on; `typing` says whether it went out. Reading the "
              "ticket (GET) as its holder marks the customer's last message read."),
    Operation("POST", "/tickets/{ticket_id}/close", tickets.close_ticket, "closeTicket",
              "Close a ticket; the freed slot pulls the next", "tickets", who=TICKET_MANAGERS,
              body=TicketCloseInput, responses={200: Ticket}),
    Operation("POST", "/tickets/{ticket_id}/transfer", tickets.transfer_ticket,
              "transferTicket",
              "Move a ticket to an agent or back to its queue, keeping its place", "tickets",
              who=TICKET_MANAGERS, body=TicketTransferInput, responses={200: Ticket},
              description="Give exactly one of `agent_id` (online, with a free slot, on the "
              "ticket's number) and `queue` (the ticket's phone_number_id). 409 "
              "`agent_unavailable`, `not_attached`, `same_agent` or `closed`."),
    Operation("GET", "/agents/{agent_id}/events", events.agent_events, "streamAgentEvents",
              "The agent's desk events, as server-sent events (text/event-stream)", "agents",
              who="the agent, admins, managers of one of its numbers", query=EventsQuery,
              query_token=True, responses={200: None},
              description="Events `ticket.routed`, `ticket.transferred`, `ticket.closed`, "
              "`after_hours.contact`, `after_hours.callback`, `transfer.requested`, "
              "`transfer.answered`; JSON data with `ticket_id`, "
              "`phone_number_id` and `wa_id`. `Last-Event-ID` (header or query) resumes. "
              "With `Accept: text/event-stream` the stream stays open; otherwise the events "
              "available now are answered and the stream ends."),
)  # fmt: skip

_NOTES_HELP: Final = (
    "Internal: notes are never sent to the customer. `text` is 1-4,096 characters (422 naming "
    "`text`). An `Idempotency-Key` header (1-64 of A-Z a-z 0-9 _ . -) makes retries safe: the "
    "same key from the same caller answers the first note with 200."
)

CONVERSATION_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("POST", "/tickets/{ticket_id}/notes", notes.add_ticket_note, "addTicketNote",
              "Add an internal note to a ticket", "notes", who=ATTACHED, body=NoteInput,
              responses={200: Note, 201: Note},
              description=_NOTES_HELP + " Kept as long as the ticket. Another number's ticket "
              "is a 404."),
    Operation("GET", "/tickets/{ticket_id}/notes", notes.list_ticket_notes, "listTicketNotes",
              "A ticket's internal notes, oldest first", "notes", who=ATTACHED,
              responses={200: NotePage}),
    Operation("POST", f"{_N}/contacts/{{wa_id}}/notes", notes.add_contact_note,
              "addContactNote", "Add an internal note to a contact", "notes", who=ATTACHED,
              body=NoteInput, responses={200: Note, 201: Note},
              description=_NOTES_HELP + " Kept 90 days after the contact's last note, like "
              "its timeline; 404 for a contact the number has not got."),
    Operation("GET", f"{_N}/contacts/{{wa_id}}/notes", notes.list_contact_notes,
              "listContactNotes", "A contact's internal notes of the last 90 days, oldest "
              "first", "notes", who=ATTACHED, responses={200: NotePage}),
    Operation("POST", "/tickets/{ticket_id}/transfer-requests",
              transfer_requests.request_transfer, "requestTicketTransfer",
              "Ask the agent serving a ticket to hand it over", "tickets",
              who="agents of the ticket's number", responses={201: TransferRequest},
              description="The holder's event stream gets `transfer.requested`. The request "
              "can be answered for the number's `tickets.transfer_request_minutes` (default "
              "5). 409 `not_held` (it waits in the queue), `already_holder`, "
              "`request_pending`, `ticket_changed`; 404 for another number's ticket."),
    Operation("POST", "/tickets/{ticket_id}/transfer-requests/{request_id}/accept",
              transfer_requests.accept_transfer, "acceptTicketTransfer",
              "Accept a transfer request: the ticket moves to the requester", "tickets",
              who=TICKET_MANAGERS, responses={200: TransferRequest},
              description="The ticket keeps its messages and history; the requester's event "
              "stream gets `transfer.answered`. 409 `request_expired`, `already_answered`, "
              "or those of a transfer (`agent_unavailable`: the request stays pending)."),
    Operation("POST", "/tickets/{ticket_id}/transfer-requests/{request_id}/decline",
              transfer_requests.decline_transfer, "declineTicketTransfer",
              "Decline a transfer request: the holder keeps the ticket", "tickets",
              who=TICKET_MANAGERS, responses={200: TransferRequest},
              description="The requester's event stream gets `transfer.answered`. 409 "
              "`request_expired` or `already_answered`."),
)  # fmt: skip

DESK_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/monitoring", monitoring.get_monitoring, "getMonitoring",
              "Live desk figures of one number, or of every number the caller manages",
              "monitoring", who="admins; managers (of the number asked for); agents get 403",
              query=MonitoringQuery, responses={200: Monitoring},
              description="Queue, service, first-response, response and service times "
              "(seconds and business minutes within service hours), today's tickets by status "
              "(today in each number's zone), agents by status, and detail lists of tickets in "
              "service, in queue, agents and tags. `total` sums the numbers (each agent counted "
              "once)."),
    Operation("GET", f"{_N}/history", history.list_history, "listHistory",
              "The number's tickets of the last 3 months, newest first, filtered", "history",
              who=ATTACHED, query=HistoryQuery, responses={200: HistoryPage}),
    Operation("GET", "/tickets/{ticket_id}/transcript.pdf", history.get_transcript,
              "getTicketTranscript", "The ticket's conversation as a PDF (application/pdf)",
              "history", who=ATTACHED, responses={200: None},
              description="A header with the number, the contact, times and agent, then "
              "every message with its author and time in the number's zone; media as "
              "placeholders, URLs as links."),
    Operation("PUT", "/tickets/{ticket_id}/tags", history.put_tags, "putTicketTags",
              "Replace a ticket's tags", "tickets", who=TICKET_MANAGERS, body=TicketTagsInput,
              responses={200: Ticket},
              description="At most 20 tags of 1-40 letters, digits, spaces, '.', '-' or '_', "
              "lower-cased. Monitoring counts them; the history filters on them."),
)  # fmt: skip

OPERATIONS: Final[tuple[Operation, ...]] = (
    *NUMBER_OPERATIONS,
    *AGENT_OPERATIONS,
    *CONTACT_OPERATIONS,
    *QUICK_REPLY_OPERATIONS,
    *TICKET_OPERATIONS,
    *CONVERSATION_OPERATIONS,
    *DESK_OPERATIONS,
    Operation("GET", "/openapi.json", docs.openapi_json, "getOpenApi", "This document", "docs",
              who="anyone: no token needed", responses={200: None}),
)  # fmt: skip
