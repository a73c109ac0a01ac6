"""The OpenAPI 3.1 document of `/api/v1`, generated from the pydantic models the API validates
with (`model_json_schema`), so that the document cannot drift from the code.

`OPERATIONS` is the table of every operation served under `/api/v1`: `handlers/api` registers
one route per entry and a test checks that the router and this table agree. The PATCH body
schema is derived from `NumberConfig`'s: every object member optional and nullable (JSON Merge
Patch: null removes), arrays whole.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

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
from bot.domain.contacts import ContactHit, ContactPage, ImportReport, SearchPage, TimelinePage
from bot.domain.contacts_import import COUNTRY_PATTERN
from bot.domain.history import PAGE_MAX as HISTORY_PAGE_MAX
from bot.domain.history import HistoryPage
from bot.domain.monitoring import Monitoring
from bot.domain.quick_replies import (
    Category,
    CategoryInput,
    CategoryPage,
    QuickReply,
    ReplyInput,
    ReplyPage,
)
from bot.domain.tickets import (
    TICKET_STATUSES,
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
from storage.after_hours import (
    LANGUAGE_PATTERN,
    ROW_ID_PATTERN,
    TEMPLATE_NAME_PATTERN,
    ActiveMessageInput,
    AfterHoursContact,
    AfterHoursPage,
)
from storage.templates import TemplateInput, TemplatePage, TemplateView

API_PREFIX: Final = "/api/v1"
_REF: Final = "#/components/schemas/{model}"
_PATCH_SUFFIX: Final = "Patch"

Method = Literal["GET", "PUT", "PATCH", "POST", "DELETE"]


class ApiError(BaseModel):
    code: str = Field(description="machine-readable: invalid, not_found, forbidden, ...")
    message: str
    field: str | None = Field(
        None, description="dotted path of the offending field: service_hours.weekly.mon[0].end"
    )


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    model_config = ConfigDict(title="Error")

    error: ApiError


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    location: Literal["path", "query"]
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = True


@dataclass(frozen=True, slots=True)
class Operation:
    method: Method
    path: str  # below API_PREFIX, aiohttp's {name} placeholders
    operation_id: str
    summary: str
    tag: str
    params: Sequence[Param] = ()
    # A model, "merge-patch" for the NumberConfig merge patch, or "csv" for a text/csv upload.
    body: type[BaseModel] | Literal["merge-patch", "csv"] | None = None
    # status -> response model (None: no body).
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    public: bool = False
    description: str = ""


_ID_SCHEMA: Final = {"type": "string", "pattern": ID_PATTERN}
PNID = Param("phone_number_id", "path", _ID_SCHEMA, "Meta's phone_number_id")
AGENT_ID = Param("agent_id", "path", _ID_SCHEMA)
TOKEN_ID = Param("token_id", "path", {"type": "string", "pattern": "^[0-9a-f]{1,64}$"})
AT = Param(
    "at",
    "query",
    {"type": "string", "format": "date-time"},
    "ISO 8601 instant with an offset or Z (a naive time is a 422); default now",
    required=False,
)
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, required=False)
ROW_ID = Param("id", "path", {"type": "string", "pattern": ROW_ID_PATTERN}, "the row's id")
REQUESTED_RETURN = Param(
    "requested_return", "query", {"type": "string", "enum": ["yes", "no", "N/D"]}, required=False
)
MESSAGE_SENT = Param("message_sent", "query", {"type": "boolean"}, required=False)
TEMPLATE_NAME = Param("name", "path", {"type": "string", "pattern": TEMPLATE_NAME_PATTERN})
TICKET_ID = Param("ticket_id", "path", _ID_SCHEMA)
TICKET_STATUS = Param(
    "status", "query", {"type": "string", "enum": list(TICKET_STATUSES)}, required=False
)
WA_ID = Param("wa_id", "path", {"type": "string", "minLength": 1, "maxLength": 64})
QUERY_TOKEN = Param(
    "token", "query", {"type": "string"}, "the bearer token, for EventSource", required=False
)
LAST_EVENT_ID = Param(
    "last_event_id",
    "query",
    {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"},
    "resume after this event (the Last-Event-ID header does the same)",
    required=False,
)
TEMPLATE_LANGUAGE = Param(
    "language", "path", {"type": "string", "pattern": LANGUAGE_PATTERN}, "Meta's code: pt_BR"
)

_TEXT = {"type": "string", "minLength": 1, "maxLength": 254}
_INSTANT = {"type": "string", "format": "date-time"}
_CONTACT_ID = Param(
    "wa_id",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 128},
    "the contact's wa_id (any spelling of the number), user id or contact key",
)
_NUMBER_QUERY = Param("number", "query", _ID_SCHEMA, "a phone_number_id", required=False)
_COUNTRY = Param(
    "country",
    "query",
    {"type": "string", "pattern": COUNTRY_PATTERN},
    "calling code for numbers written without '+' (55: Brazil)",
    required=False,
)
_CSV_HELP = (
    "A CSV with a header row: `phone` required; `name`, `email`, `city`, `document` "
    "known (also `telefone`, `nome`, `cidade`, `cpf`, ...); other columns kept in "
    "`extra`. Delimiter `,`, `;` or tab; UTF-8 or Windows-1252; at most 2 MiB and "
    "20,000 rows. Send it as the body (`text/csv`) or as the `file` part of a "
    "multipart form. Valid rows are stored, others reported by row (the header is "
    "row 1) and column; the same file again changes nothing. Imported contacts do "
    "not open the 24-hour window."
)

CONTACT_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/contacts",
        "searchContacts",
        "Contacts by name or phone across the caller's numbers",
        "contacts",
        (
            Param(
                "q",
                "query",
                {"type": "string", "minLength": 1, "maxLength": 100},
                "a name (word prefixes, accents and case ignored) or a phone number "
                "(any spelling, country code and ninth digit optional)",
            ),
            _NUMBER_QUERY,
            Param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}, required=False
            ),
        ),
        responses={200: SearchPage},
        description="Each hit names its number, whether there is a history within 90 "
        "days, whether the 24-hour window is open and who serves the contact. Numbers "
        "the caller is not attached to are left out (403 only for an explicit `number`).",
    ),
    Operation(
        "POST",
        "/contacts/import",
        "importContactsTo",
        "Import contacts from a CSV into `number`",
        "contacts",
        (Param("number", "query", _ID_SCHEMA, "the phone_number_id to import into"), _COUNTRY),
        "csv",
        {200: ImportReport, 413: ErrorResponse},
        description=_CSV_HELP,
    ),
    Operation(
        "GET",
        "/numbers/{phone_number_id}/contacts",
        "listContacts",
        "A number's contacts, latest interaction first, filtered",
        "contacts",
        (
            PNID,
            Param("name", "query", _TEXT, "word prefixes of the name", required=False),
            Param("phone", "query", _TEXT, "any spelling of the number", required=False),
            Param("email", "query", _TEXT, "substring", required=False),
            Param("city", "query", _TEXT, "substring", required=False),
            Param("document", "query", _TEXT, "substring", required=False),
            Param("id", "query", _TEXT, "contact key, wa_id or user id", required=False),
            Param("from", "query", _INSTANT, "last interaction at or after", required=False),
            Param("to", "query", _INSTANT, "last interaction at or before", required=False),
            Param(
                "cursor",
                "query",
                {"type": "string", "pattern": r"^\d{1,16}:\d{1,9}$"},
                "next_cursor of the previous page",
                required=False,
            ),
            Param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, required=False
            ),
        ),
        responses={200: ContactPage},
    ),
    Operation(
        "POST",
        "/numbers/{phone_number_id}/contacts/import",
        "importContacts",
        "Import contacts from a CSV",
        "contacts",
        (PNID, _COUNTRY),
        "csv",
        {200: ImportReport, 413: ErrorResponse},
        description=_CSV_HELP,
    ),
    Operation(
        "GET",
        "/numbers/{phone_number_id}/contacts/{wa_id}",
        "getContact",
        "One contact of a number",
        "contacts",
        (PNID, _CONTACT_ID),
        responses={200: ContactHit},
    ),
    Operation(
        "GET",
        "/numbers/{phone_number_id}/contacts/{wa_id}/timeline",
        "getTimeline",
        "A contact's messages in and out of the last 90 days",
        "contacts",
        (
            PNID,
            _CONTACT_ID,
            Param(
                "q",
                "query",
                {"type": "string", "maxLength": 100},
                "text to find (accents and case ignored)",
                required=False,
            ),
            Param(
                "order",
                "query",
                {"type": "string", "enum": ["desc", "asc"]},
                "desc (default): newest first",
                required=False,
            ),
            Param(
                "cursor",
                "query",
                {"type": "string", "maxLength": 300},
                "next_cursor of the previous page (older entries)",
                required=False,
            ),
            Param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, required=False
            ),
        ),
        responses={200: TimelinePage},
    ),
)

_CATEGORY_ID = Param("category_id", "path", _ID_SCHEMA)
_REPLY_ID = Param("reply_id", "path", _ID_SCHEMA)
_QR = "/quick-replies/categories"

QUICK_REPLY_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/quick-replies", "getQuickReplies",
              "The caller's quick replies: categories by name, each with its replies",
              "quick-replies", (_NUMBER_QUERY,), responses={200: CategoryPage},
              description="Quick replies belong to the caller and are the same on every "
              "number they serve; `number` only checks that the caller serves it (403)."),
    Operation("POST", _QR, "createQuickReplyCategory",
              "Create a category (200 with the existing one when the name is taken)",
              "quick-replies", body=CategoryInput, responses={200: Category, 201: Category}),
    Operation("GET", _QR + "/{category_id}", "getQuickReplyCategory",
              "A category with its replies", "quick-replies", (_CATEGORY_ID,),
              responses={200: Category}),
    Operation("PUT", _QR + "/{category_id}", "renameQuickReplyCategory",
              "Rename a category (409 name_taken)", "quick-replies", (_CATEGORY_ID,),
              CategoryInput, {200: Category}),
    Operation("DELETE", _QR + "/{category_id}", "deleteQuickReplyCategory",
              "Delete a category and its replies", "quick-replies", (_CATEGORY_ID,),
              responses={204: None}),
    Operation("GET", _QR + "/{category_id}/replies", "listQuickReplies",
              "A category's replies by title", "quick-replies", (_CATEGORY_ID,),
              responses={200: ReplyPage}),
    Operation("POST", _QR + "/{category_id}/replies", "createQuickReply",
              "Add a reply (200 with the existing one for the same title and text; "
              "409 title_taken for another text)", "quick-replies", (_CATEGORY_ID,),
              ReplyInput, {200: QuickReply, 201: QuickReply}),
    Operation("GET", _QR + "/{category_id}/replies/{reply_id}", "getQuickReply",
              "A reply", "quick-replies", (_CATEGORY_ID, _REPLY_ID),
              responses={200: QuickReply}),
    Operation("PUT", _QR + "/{category_id}/replies/{reply_id}", "putQuickReply",
              "Replace a reply's title and text (409 title_taken)", "quick-replies",
              (_CATEGORY_ID, _REPLY_ID), ReplyInput, {200: QuickReply}),
    Operation("DELETE", _QR + "/{category_id}/replies/{reply_id}", "deleteQuickReply",
              "Delete a reply", "quick-replies", (_CATEGORY_ID, _REPLY_ID),
              responses={204: None}),
)  # fmt: skip

_BOUND = {"type": "string", "minLength": 1, "maxLength": 64}

DESK_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/monitoring", "getMonitoring",
              "Live desk figures of one number, or of every number the caller manages",
              "monitoring",
              (_NUMBER_QUERY,
               Param("details", "query", {"type": "integer", "minimum": 0, "maximum": 100},
                     "tickets per detail list (default 20)", required=False)),
              responses={200: Monitoring},
              description="Admins and managers (of the number); agents get 403. Queue, "
              "service, first-response, response and service times (seconds and business "
              "minutes within service hours), today's tickets by status (today in each "
              "number's zone), agents by status, and detail lists of tickets in service, in "
              "queue, agents and tags. `total` sums the numbers (each agent counted once)."),
    Operation("GET", "/numbers/{phone_number_id}/history", "listHistory",
              "The number's tickets of the last 3 months, newest first, filtered", "history",
              (PNID,
               Param("from", "query", _BOUND, "a date (the number's zone) or an instant with "
                     "an offset; at most 3 months back", required=False),
               Param("to", "query", _BOUND, "a date (included) or an instant (excluded)",
                     required=False),
               Param("agent", "query", _ID_SCHEMA, "an agent who held the ticket at some time",
                     required=False),
               TICKET_STATUS,
               Param("tag", "query", {"type": "string", "minLength": 1, "maxLength": 40},
                     required=False),
               Param("cursor", "query", {"type": "string", "maxLength": 40},
                     "next_cursor of the previous page", required=False),
               Param("limit", "query",
                     {"type": "integer", "minimum": 1, "maximum": HISTORY_PAGE_MAX},
                     required=False)),
              responses={200: HistoryPage}),
    Operation("GET", "/tickets/{ticket_id}/transcript.pdf", "getTicketTranscript",
              "The ticket's conversation as a PDF (application/pdf)", "history", (TICKET_ID,),
              responses={200: None},
              description="A header with the number, the contact, times and agent, then "
              "every message with its author and time in the number's zone; media as "
              "placeholders, URLs as links. Whoever may read the ticket."),
    Operation("PUT", "/tickets/{ticket_id}/tags", "putTicketTags",
              "Replace a ticket's tags (its agent, managers, admins)", "tickets", (TICKET_ID,),
              TicketTagsInput, {200: Ticket},
              description="At most 20 tags of 1-40 letters, digits, spaces, '.', '-' or '_', "
              "lower-cased. Monitoring counts them; the history filters on them."),
)  # fmt: skip

OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("GET", "/numbers", "listNumbers", "The numbers the caller may read", "numbers",
              responses={200: NumberPage}),
    Operation("PUT", "/numbers/{phone_number_id}", "putNumber",
              "Create or replace a number's settings (admins; managers of the number)",
              "numbers", (PNID,), NumberConfig, {200: NumberView, 201: NumberView}),
    Operation("GET", "/numbers/{phone_number_id}", "getNumber",
              "A number's settings, defaults filled, with its version", "numbers", (PNID,),
              responses={200: NumberView}),
    Operation("PATCH", "/numbers/{phone_number_id}", "patchNumber",
              "Change only the fields given (JSON Merge Patch, RFC 7386)", "numbers", (PNID,),
              "merge-patch", {200: NumberView},
              description="Nested objects merge, null removes a field (back to its default), "
              "arrays are replaced whole. Invalid results are refused whole (422)."),
    Operation("DELETE", "/numbers/{phone_number_id}", "deleteNumber",
              "Stop serving a number (admins)", "numbers", (PNID,), responses={204: None}),
    Operation("GET", "/numbers/{phone_number_id}/hours", "getNumberHours",
              "Whether the number is open at an instant, and when it next opens", "numbers",
              (PNID, AT), responses={200: HoursAnswer}),
    Operation("GET", "/numbers/{phone_number_id}/audit", "getNumberAudit",
              "Changes of a number's settings, newest first (admins; managers of the number)",
              "numbers", (PNID, LIMIT), responses={200: AuditPage}),
    Operation("GET", "/numbers/{phone_number_id}/after-hours-contacts",
              "listAfterHoursContacts",
              "Contacts who wrote while closed, last 7 days, newest first", "after-hours",
              (PNID, REQUESTED_RETURN, MESSAGE_SENT), responses={200: AfterHoursPage}),
    Operation("POST", "/numbers/{phone_number_id}/after-hours-contacts/{id}/active-message",
              "sendActiveMessage", "Queue an approved template to an after-hours contact",
              "after-hours", (PNID, ROW_ID), ActiveMessageInput, {202: AfterHoursContact},
              description="422 names `template`, `variables` or `variables[i]`; 409 "
              "`already_sent` when the template went to this contact within 24 hours, unless "
              "`force` is true. `message_sent` is true from the 202 on."),
    Operation("GET", "/templates", "listTemplates",
              "Templates active messages may use (Graph API, cached; registered)", "templates",
              responses={200: TemplatePage}),
    Operation("POST", "/templates/refresh", "refreshTemplates",
              "Re-read the WABA's templates from the Graph API (admins, managers)", "templates",
              responses={200: TemplatePage, 502: ErrorResponse}),
    Operation("PUT", "/templates/{name}/{language}", "putTemplate",
              "Register a template by hand, when there is no WABA access (admins)", "templates",
              (TEMPLATE_NAME, TEMPLATE_LANGUAGE), TemplateInput,
              {200: TemplateView, 201: TemplateView}),
    Operation("DELETE", "/templates/{name}/{language}", "deleteTemplate",
              "Forget a registered template (admins)", "templates",
              (TEMPLATE_NAME, TEMPLATE_LANGUAGE), responses={204: None}),
    Operation("GET", "/agents", "listAgents",
              "The agents the caller may see (admins: all; managers: of their numbers)",
              "agents", responses={200: AgentPage}),
    Operation("PUT", "/agents/{agent_id}", "putAgent", "Create or replace an agent (admins)",
              "agents", (AGENT_ID,), AgentInput, {200: AgentRecord, 201: AgentRecord}),
    Operation("GET", "/agents/{agent_id}", "getAgent",
              "An agent (admins, the agent, managers of one of its numbers)", "agents",
              (AGENT_ID,), responses={200: AgentRecord}),
    Operation("DELETE", "/agents/{agent_id}", "deleteAgent",
              "Delete an agent and revoke its tokens (admins)", "agents", (AGENT_ID,),
              responses={204: None}),
    Operation("PUT", "/agents/{agent_id}/status", "putAgentStatus",
              "Set an agent's status (the agent, admins, managers of all its numbers)",
              "agents", (AGENT_ID,), StatusInput, {200: AgentRecord}),
    Operation("POST", "/agents/{agent_id}/tokens", "issueAgentToken",
              "Issue a bearer token for an agent, shown once (admins)", "agents", (AGENT_ID,),
              responses={201: IssuedToken}),
    Operation("GET", "/agents/{agent_id}/tokens", "listAgentTokens",
              "An agent's live tokens, by id (admins)", "agents", (AGENT_ID,),
              responses={200: TokenPage}),
    Operation("DELETE", "/agents/{agent_id}/tokens", "revokeAgentTokens",
              "Revoke every token of an agent (admins)", "agents", (AGENT_ID,),
              responses={204: None}),
    Operation("DELETE", "/agents/{agent_id}/tokens/{token_id}", "revokeAgentToken",
              "Revoke one token of an agent (admins)", "agents", (AGENT_ID, TOKEN_ID),
              responses={204: None}),
    *CONTACT_OPERATIONS,
    *QUICK_REPLY_OPERATIONS,
    Operation("GET", "/numbers/{phone_number_id}/tickets", "listTickets",
              "The number's tickets, newest first (waiting ones in queue order)", "tickets",
              (PNID, TICKET_STATUS, LIMIT), responses={200: TicketPage},
              description="`open` means assigned to an agent; it is in service once "
              "`first_response_at` is set. `lost` and `abandoned` are closed tickets the "
              "customer left before an agent had them, or before the first reply."),
    Operation("PUT", "/numbers/{phone_number_id}/contacts/{wa_id}/owner", "putContactOwner",
              "Set or clear (null) the contact's portfolio owner (admins; managers)",
              "tickets", (PNID, WA_ID), OwnerInput, {200: OwnerView}),
    Operation("GET", "/tickets/{ticket_id}", "getTicket",
              "A ticket with its messages and history", "tickets", (TICKET_ID,),
              responses={200: TicketDetail}),
    Operation("POST", "/tickets/{ticket_id}/messages", "replyToTicket",
              "The serving agent's text reply, queued to WhatsApp", "tickets", (TICKET_ID,),
              TicketReplyInput, {202: SentReply},
              description="409 `window_closed` outside the 24 hours after the customer's last "
              "message; 409 `served_by_another` naming the agent who holds the ticket; 409 "
              "`not_assigned` while it waits. An `Idempotency-Key` header makes retries safe."),
    Operation("POST", "/tickets/{ticket_id}/close", "closeTicket",
              "Close a ticket (its agent, managers, admins); the freed slot pulls the next",
              "tickets", (TICKET_ID,), TicketCloseInput, {200: Ticket}),
    Operation("POST", "/tickets/{ticket_id}/transfer", "transferTicket",
              "Move a ticket to an agent or back to its queue, keeping its place", "tickets",
              (TICKET_ID,), TicketTransferInput, {200: Ticket},
              description="Give exactly one of `agent_id` (online, with a free slot, on the "
              "ticket's number) and `queue` (the ticket's phone_number_id). 409 "
              "`agent_unavailable`, `not_attached`, `same_agent` or `closed`."),
    Operation("GET", "/agents/{agent_id}/events", "streamAgentEvents",
              "The agent's desk events, as server-sent events (text/event-stream)", "agents",
              (AGENT_ID, QUERY_TOKEN, LAST_EVENT_ID), responses={200: None},
              description="Events `ticket.routed`, `ticket.transferred`, `ticket.closed`, "
              "`after_hours.contact`, `after_hours.callback`; JSON data with `ticket_id`, "
              "`phone_number_id` and `wa_id`. `Last-Event-ID` (header or query) resumes. "
              "With `Accept: text/event-stream` the stream stays open; otherwise the events "
              "available now are answered and the stream ends."),
    *DESK_OPERATIONS,
    Operation("GET", "/openapi.json", "getOpenApi", "This document (no token needed)", "docs",
              responses={200: None}, public=True),
)  # fmt: skip

# Answered by every authenticated operation (the error middleware's vocabulary).
_ERRORS: Final = {
    400: "The body is not JSON",
    401: "Missing, invalid or revoked bearer token",
    403: "Outside the caller's numbers or role",
    404: "No such resource",
    409: "Concurrent changes; retry",
    422: "Invalid input; `field` names it",
    503: "Storage unavailable; retry",
}


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    out: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in OPERATIONS:
        if isinstance(op.body, type):
            out.append((op.body, "validation"))
        if op.body == "merge-patch":
            out.append((NumberConfig, "validation"))
        out.extend((model, "serialization") for model in op.responses.values() if model)
    return list(dict.fromkeys(out))


def _def_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


class _PatchSchemas:
    """Derives `<Model>Patch` definitions: object members optional and nullable, recursively
    through object-valued members, but not inside arrays (an array is replaced whole)."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def of_def(self, name: str) -> str:
        patch_name = name + _PATCH_SUFFIX
        if patch_name not in self.defs:
            self.defs[patch_name] = {}  # reserve first: definitions may be recursive
            self.defs[patch_name] = self.of_object(self.defs[name])
        return patch_name

    def of_object(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in schema.items() if k not in ("required", "default")}
        if "title" in out:
            out["title"] = f"{out['title']} ({_PATCH_SUFFIX.lower()})"
        if "properties" in out:
            out["properties"] = {
                k: _nullable(self.of_member(v)) for k, v in out["properties"].items()
            }
        if isinstance(out.get("additionalProperties"), dict):
            out["additionalProperties"] = _nullable(self.of_member(out["additionalProperties"]))
        return out

    def of_member(self, schema: dict[str, Any]) -> dict[str, Any]:
        # A default describes PUT; in a patch, absent means "unchanged".
        schema = {k: v for k, v in schema.items() if k != "default"}
        ref = schema.get("$ref")
        if isinstance(ref, str) and self._is_object(self.defs[_def_name(ref)]):
            return {**schema, "$ref": _REF.format(model=self.of_def(_def_name(ref)))}
        if isinstance(schema.get("anyOf"), list):
            return {**schema, "anyOf": [self.of_member(s) for s in schema["anyOf"]]}
        if self._is_object(schema):
            return self.of_object(schema)
        return schema

    @staticmethod
    def _is_object(schema: Mapping[str, Any]) -> bool:
        return schema.get("type") == "object"


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.required or param.location == "path",
        "schema": dict(param.schema),
    }
    if param.description:
        out["description"] = param.description
    return out


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


@cache
def _document() -> dict[str, Any]:
    refs, top = models_json_schema(_models(), ref_template=_REF)
    defs: dict[str, Any] = copy.deepcopy(top.get("$defs", {}))
    patches = _PatchSchemas(defs)
    error_ref = refs[(ErrorResponse, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        if op.description:
            item["description"] = op.description
        if op.params:
            item["parameters"] = [_parameter(p) for p in op.params]
        if op.body == "merge-patch":
            config_ref = refs[(NumberConfig, "validation")]["$ref"]
            patch_ref = {"$ref": _REF.format(model=patches.of_def(_def_name(config_ref)))}
            item["requestBody"] = {
                "required": True,
                "content": {
                    "application/merge-patch+json": {"schema": patch_ref},
                    "application/json": {"schema": patch_ref},
                },
            }
        elif op.body == "csv":
            item["requestBody"] = {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        elif op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": _json(refs[(op.body, "validation")]),
            }
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            answer: dict[str, Any] = {"description": "OK" if status < 300 else "Done"}
            if model is not None:
                answer["content"] = _json(refs[(model, "serialization")])
            elif op.public:
                answer["content"] = {"application/json": {"schema": {"type": "object"}}}
            responses[str(status)] = answer
        if not op.public:
            for status, description in _ERRORS.items():
                responses[str(status)] = {"description": description, "content": _json(error_ref)}
            item["security"] = [{"bearer": []}]
        else:
            item["security"] = []
        item["responses"] = responses
        paths.setdefault(API_PREFIX + op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deskline API",
            "version": "1",
            "description": "Numbers, chatbot settings and agents of the deskline desk. "
            "Every call carries `Authorization: Bearer <token>` except this document.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy: callers may modify it)."""
    return copy.deepcopy(_document())
