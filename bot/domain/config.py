"""A number's chatbot settings (`NumberConfig`), agents' records, and JSON Merge Patch.

Everything the admin API accepts is validated here, so that handlers stay thin and storage
never holds a document that does not parse. Validation failures become `InvalidInputError`
whose `field` is the dotted path from the top of the request body
(`service_hours.weekly.mon[0].end`, `absence.suggested_agent.phone`).

Storage keeps the *document* (what admins set, nulls removed) rather than a dump with the
defaults filled in: a PATCH merges onto exactly what was set (RFC 7386), a default that
depends on another field (the after-hours message follows `language`) keeps following it,
and settings added in later releases take their defaults on old documents. `NumberConfig`
is the validated, defaults-filled view of a document; readers always get that view.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

from bot.domain.auth import Role
from bot.domain.errors import InvalidInputError
from bot.domain.schedule import ServiceHours, field_path, validate_timezone

# Meta's phone_number_id is digits; ids also appear in Redis keys, so no ':' or spaces.
ID_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
_ID_RE: Final = re.compile(ID_PATTERN)
# E.164: '+', a country code that does not start with 0, at most 15 digits in all.
E164_PATTERN: Final = r"^\+[1-9][0-9]{6,14}$"
_E164_RE: Final = re.compile(E164_PATTERN)

# WhatsApp limits (WHATSAPP.md): a text message body, and the body of an interactive message
# (the after-hours reply carries its "notify me" button as an interactive message).
TEXT_BODY_MAX: Final = 4096
INTERACTIVE_BODY_MAX: Final = 1024
NEXT_OPENING: Final = "{next_opening}"
# Room kept for each rendered {next_opening} ("sexta-feira, 25 de dezembro às 09:00" is ~40):
# the limit must hold for the message that is sent, not only for the template.
NEXT_OPENING_RENDERED_MAX: Final = 80

# 1 minute .. 30 days: 0 would answer every message, more than a month is "never".
COOLDOWN_MIN: Final = 1
COOLDOWN_MAX: Final = 30 * 24 * 60

Language = Literal["pt-BR", "en", "es"]
LANGUAGES: Final[tuple[Language, ...]] = ("pt-BR", "en", "es")
DEFAULT_LANGUAGE: Final[Language] = "pt-BR"

DEFAULT_AFTER_HOURS_MESSAGE: Final[Mapping[Language, str]] = {
    "pt-BR": "Olá! Estamos fora do horário de atendimento. Voltamos {next_opening}.",
    "en": "Hello! We are closed right now. We are back {next_opening}.",
    "es": "¡Hola! Estamos fuera del horario de atención. Volvemos {next_opening}.",
}
DEFAULT_ABSENCE_MESSAGE: Final[Mapping[Language, str]] = {
    "pt-BR": "Olá! No momento o atendente está ausente.",
    "en": "Hello! The agent is away at the moment.",
    "es": "¡Hola! En este momento el agente está ausente.",
}

PhoneNumberId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
AgentId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _check_e164(value: str) -> str:
    if _E164_RE.fullmatch(value) is None:
        raise _fail("phone", f"phone must be E.164 with '+', e.g. +5511999990000; got {value!r}")
    return value


Phone = Annotated[
    str, AfterValidator(_check_e164), Field(json_schema_extra={"pattern": E164_PATTERN})
]


def is_valid_id(value: str) -> bool:
    """Whether `value` may be a phone_number_id or an agent id."""
    return _ID_RE.fullmatch(value) is not None


def _fail(code: str, message: str) -> PydanticCustomError:
    # The message goes in through the context so that braces in user input are not a template.
    return PydanticCustomError(code, "{detail}", {"detail": message})


def _at(loc: tuple[int | str, ...], code: str, message: str, value: Any) -> ValidationError:
    """A validation error located at `loc` below the model that raises it."""
    return ValidationError.from_exception_data(
        "settings", [InitErrorDetails(type=_fail(code, message), loc=loc, input=value)]
    )


def _without_nulls(data: Any) -> Any:
    # API.md: `null` means the same as absent, for every field.
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if v is not None}
    return data


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return _without_nulls(data)


class SuggestedAgent(_Section):
    """Who the customer may talk to instead while the agent is away."""

    name: Name
    phone: Phone = Field(description="E.164, with '+': +5511999990000")


class AfterHours(_Section):
    """The reply to a customer who writes outside service hours."""

    message: Annotated[str, StringConstraints(max_length=TEXT_BODY_MAX)] = Field(
        DEFAULT_AFTER_HOURS_MESSAGE[DEFAULT_LANGUAGE],
        description="Default: a message in the number's `language`. `{next_opening}` is "
        "replaced by when service resumes; no other braces are allowed.",
    )
    notify_next_service_hour: StrictBool = Field(
        False, description="Offer a 'notify me' button (id `notify_next_service_hour`)."
    )

    @field_validator("message")
    @classmethod
    def _check_message(cls, value: str) -> str:
        if not value.strip():
            raise _fail("empty", "message must not be empty")
        if "{" in value.replace(NEXT_OPENING, "") or "}" in value.replace(NEXT_OPENING, ""):
            raise _fail("placeholder", f"the only placeholder allowed is {NEXT_OPENING}")
        return value

    @model_validator(mode="after")
    def _check_length(self) -> Self:
        limit = INTERACTIVE_BODY_MAX if self.notify_next_service_hour else TEXT_BODY_MAX
        if rendered_length(self.message) > limit:
            kind = "an interactive body" if self.notify_next_service_hour else "a text body"
            raise _at(
                ("message",),
                "too_long",
                f"message is too long for {kind}: at most {limit} characters once"
                f" {NEXT_OPENING} is rendered (counted as {NEXT_OPENING_RENDERED_MAX})",
                self.message,
            )
        return self


def rendered_length(message: str) -> int:
    """The length `message` may reach once every `{next_opening}` is rendered."""
    count = message.count(NEXT_OPENING)
    return len(message) + count * (NEXT_OPENING_RENDERED_MAX - len(NEXT_OPENING))


class Absence(_Section):
    """The agent of this number is away: customers get `message` and, if set, a suggestion."""

    enabled: StrictBool = False
    message: Annotated[
        str, StringConstraints(strip_whitespace=False, min_length=1, max_length=TEXT_BODY_MAX)
    ] = Field(
        DEFAULT_ABSENCE_MESSAGE[DEFAULT_LANGUAGE],
        description="Default: a message in the number's `language`.",
    )
    starts_at: AwareDatetime | None = Field(None, description="With an offset; null: now.")
    ends_at: AwareDatetime | None = Field(None, description="After starts_at; null: no end.")
    suggested_agent: SuggestedAgent | None = None
    skip_customers_in_service: StrictBool = Field(
        True,
        description="Customers whose ticket an agent holds right now get no absence reply "
        "(nor the suggested agent's card): they are already being served. False: every "
        "customer gets it.",
    )

    @field_validator("message")
    @classmethod
    def _check_message(cls, value: str) -> str:
        if not value.strip():
            raise _fail("empty", "message must not be empty")
        return value

    @field_validator("ends_at")
    @classmethod
    def _check_order(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("starts_at")
        if value is not None and starts is not None and value <= starts:
            raise _fail("range_order", "ends_at must be after starts_at")
        return value

    def active_at(self, instant: datetime) -> bool:
        """Whether absence applies at `instant` (aware): enabled and within its dates."""
        if not self.enabled:
            return False
        if self.starts_at is not None and instant < self.starts_at:
            return False
        return self.ends_at is None or instant < self.ends_at


QUEUE_POSITION: Final = "{queue_position}"
# Minutes: routing timeouts must fit in a day; a waiting ticket is lost after a week at most.
REROUTE_MAX_MINUTES: Final = 24 * 60
LOST_MAX_MINUTES: Final = 7 * 24 * 60

DEFAULT_WELCOME_MESSAGE: Final[Mapping[Language, str]] = {
    "pt-BR": "Olá! Recebemos sua mensagem e um atendente vai falar com você em breve.",
    "en": "Hello! We got your message and an agent will be with you shortly.",
    "es": "¡Hola! Recibimos tu mensaje y un agente te atenderá en breve.",
}


class Welcome(_Section):
    """The optional reply to a customer whose message opens a ticket in service hours."""

    enabled: StrictBool = False
    message: Annotated[str, StringConstraints(min_length=1, max_length=TEXT_BODY_MAX)] | None = (
        Field(None, description="null: a default in the number's `language`. No placeholders.")
    )
    queue_message: (
        Annotated[str, StringConstraints(min_length=1, max_length=TEXT_BODY_MAX - 10)] | None
    ) = Field(
        None,
        description="Sent instead of `message` when the ticket has to wait; "
        "`{queue_position}` is replaced by its place in the queue (1 = next).",
    )

    @field_validator("message")
    @classmethod
    def _check_message(cls, value: str | None) -> str | None:
        if value is not None and ("{" in value or "}" in value):
            raise _fail("placeholder", "message takes no placeholders")
        if value is not None and not value.strip():
            raise _fail("empty", "message must not be empty")
        return value

    @field_validator("queue_message")
    @classmethod
    def _check_queue_message(cls, value: str | None) -> str | None:
        if value is None:
            return value
        rest = value.replace(QUEUE_POSITION, "")
        if "{" in rest or "}" in rest:
            raise _fail("placeholder", f"the only placeholder allowed is {QUEUE_POSITION}")
        if not value.strip():
            raise _fail("empty", "queue_message must not be empty")
        return value


class Tickets(_Section):
    """Tickets and routing on this number (issue 7)."""

    welcome: Welcome = Welcome()
    reroute_after_minutes: StrictInt = Field(
        10,
        ge=1,
        le=REROUTE_MAX_MINUTES,
        description="An assigned ticket with no first reply after this long is routed again.",
    )
    lost_after_minutes: StrictInt = Field(
        120,
        ge=1,
        le=LOST_MAX_MINUTES,
        description="A waiting ticket with no new message and no agent for this long is lost.",
    )
    offline_grace_minutes: StrictInt = Field(
        5,
        ge=0,
        le=REROUTE_MAX_MINUTES,
        description="The tickets of an agent who went invisible go back to the queue after "
        "this long (an agent on break keeps theirs).",
    )
    transfer_request_minutes: StrictInt = Field(
        5,
        ge=1,
        le=REROUTE_MAX_MINUTES,
        description="A request to take over a served ticket (POST "
        "/tickets/{id}/transfer-requests) can be accepted for this long; then it expires.",
    )
    read_receipts: StrictBool = Field(
        True,
        description="When the holding agent opens a ticket, the customer's last message is "
        "marked as read on WhatsApp (blue ticks), once per message; while the agent types a "
        "reply, WhatsApp shows the customer a typing indicator (at most every 20 seconds, "
        "only inside the 24-hour window). False: neither is sent.",
    )


# The example of API.md: shown in the OpenAPI document, and what schemathesis sends first.
EXAMPLE: Final[Mapping[str, Any]] = {
    "display_name": "Loja Centro",
    "timezone": "America/Sao_Paulo",
    "language": "pt-BR",
    "service_hours": {
        "always_open": False,
        "weekly": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "sat": [{"start": "22:00", "end": "02:00"}],
        },
        "exceptions": [
            {"date": "2026-12-25", "closed": True},
            {
                "date": "2026-12-24",
                "hours": [{"start": "09:00", "end": "12:00"}],
                "recurring": True,
            },
            {"date": "2027-01-02", "end_date": "2027-01-05", "closed": True, "label": "inventory"},
        ],
        "holidays": {"country": "BR", "subdivision": "SP"},
    },
    "after_hours": {
        "message": "We are closed. We are back {next_opening}.",
        "notify_next_service_hour": True,
    },
    "absence": {
        "enabled": False,
        "message": "Ana is on vacation.",
        "starts_at": None,
        "ends_at": None,
        "suggested_agent": {"name": "João", "phone": "+5511999990000"},
        "skip_customers_in_service": True,
    },
    "auto_reply_cooldown_minutes": 1440,
}


class NumberConfig(BaseModel):
    """The chatbot settings of one number: the body of `PUT /api/v1/numbers/{id}`.

    Required: `timezone` and `service_hours`; everything else has a default, and `null` means
    absent. Unknown fields are refused (a typo must not be silently ignored).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [dict(EXAMPLE)]}
    )

    display_name: Name | None = None
    timezone: str = Field(description="IANA time zone name, e.g. America/Sao_Paulo")
    language: Language = DEFAULT_LANGUAGE
    service_hours: ServiceHours
    after_hours: AfterHours = AfterHours()
    absence: Absence = Absence()
    auto_reply_cooldown_minutes: StrictInt = Field(
        1440,
        ge=COOLDOWN_MIN,
        le=COOLDOWN_MAX,
        description="At most one auto-reply of a kind per contact within this many minutes.",
    )
    tickets: Tickets = Tickets()

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = _without_nulls(data)
        if not isinstance(data, dict):
            return data
        language = data.get("language", DEFAULT_LANGUAGE)
        if language not in LANGUAGES:
            return data  # the language error is reported on its own field
        for key, defaults in (
            ("after_hours", DEFAULT_AFTER_HOURS_MESSAGE),
            ("absence", DEFAULT_ABSENCE_MESSAGE),
        ):
            section = _without_nulls(data.get(key, {}))
            if isinstance(section, dict) and "message" not in section:
                data[key] = {**section, "message": defaults[language]}
        return data

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            return validate_timezone(value)
        except ValueError as exc:
            raise _fail("timezone", str(exc)) from exc

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class NumberView(NumberConfig):
    """A number as the API answers it: the settings with defaults filled, plus its identity."""

    # The request example lacks the identity fields: not an example of this.
    model_config = ConfigDict(json_schema_extra=lambda schema: schema.pop("examples", None))

    phone_number_id: PhoneNumberId
    version: int = Field(description="Incremented by every change; never reused.")
    updated_at: AwareDatetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class StoredNumber:
    """A number as storage holds it: `document` is what admins set, `config` its parsed view."""

    phone_number_id: str
    version: int
    document: dict[str, Any]
    config: NumberConfig
    updated_at: datetime
    updated_by: str

    def view(self) -> NumberView:
        return NumberView.model_validate(
            {
                **self.document,
                "phone_number_id": self.phone_number_id,
                "version": self.version,
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
            }
        )


def invalid_input(exc: ValidationError, prefix: str = "") -> InvalidInputError:
    """The first error of `exc` as an InvalidInputError naming its field (`prefix` + path)."""
    first = exc.errors(include_url=False)[0]
    path = field_path((*([prefix] if prefix else []), *first["loc"]))
    message = f"{path}: {first['msg']}" if path else first["msg"]
    return InvalidInputError(message, field=path or None)


def parse_config(document: Any) -> NumberConfig:
    """Validate a settings document.

    Raises:
        InvalidInputError: naming the first offending field.
    """
    try:
        return NumberConfig.model_validate(document)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def strip_nulls(document: Any) -> Any:
    """`document` with every null member of every object removed (null means absent)."""
    if isinstance(document, Mapping):
        return {k: strip_nulls(v) for k, v in document.items() if v is not None}
    if isinstance(document, list):
        return [strip_nulls(v) for v in document]
    return document


def merge_patch(stored: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, null removes, the rest replaces.

    Arrays are values like any other, so a patched array replaces the stored one whole.
    Neither argument is modified.
    """
    if not isinstance(patch, Mapping):
        return patch
    result = dict(stored) if isinstance(stored, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def new_document(body: Any) -> tuple[dict[str, Any], NumberConfig]:
    """The document to store for a PUT body, and its parsed view.

    Raises:
        InvalidInputError: the body is not an object, or a field is invalid.
    """
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object")
    document = strip_nulls(body)
    return document, parse_config(document)


def patched_document(stored: dict[str, Any], patch: Any) -> tuple[dict[str, Any], NumberConfig]:
    """Apply a merge patch to a stored document; the merged document and its parsed view.

    `{"absence": {"enabled": true}}` keeps absence's message and suggested agent.

    Raises:
        InvalidInputError: the patch is not an object, or the merged settings are invalid
            (the field is named from the top of the document).
    """
    if not isinstance(patch, dict):
        raise InvalidInputError("a merge patch must be a JSON object")
    merged = merge_patch(stored, patch)
    return merged, parse_config(merged)


# --- audit --------------------------------------------------------------------------------


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    before: Any = None
    after: Any = None


AuditAction = Literal["create", "replace", "patch", "delete"]


class AuditEntry(BaseModel):
    """One change of a number's settings: who, when, and before/after of the changed fields.

    `changes` is keyed by dotted path (`absence.enabled`); arrays count as one field.
    """

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    actor: str
    action: AuditAction
    version: int
    changes: dict[str, FieldChange]


class AuditPage(BaseModel):
    items: list[AuditEntry]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def changed_fields(
    before: NumberConfig | None, after: NumberConfig | None
) -> dict[str, FieldChange]:
    """The leaves (dotted paths) whose effective value differs between two versions."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    if before is not None:
        _flatten(before.model_dump(mode="json"), "", old)
    if after is not None:
        _flatten(after.model_dump(mode="json"), "", new)
    return {
        path: FieldChange(before=old.get(path), after=new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    }


# --- agents -------------------------------------------------------------------------------

AgentStatus = Literal["online", "break", "invisible"]


class AgentInput(BaseModel):
    """The body of `PUT /api/v1/agents/{agent_id}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    numbers: tuple[PhoneNumberId, ...] = Field(
        (), max_length=1000, description="phone_number_ids the agent serves"
    )
    slots: StrictInt = Field(3, ge=0, le=100, description="tickets served at the same time")
    role: Role = "agent"

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return _without_nulls(data)

    @field_validator("numbers")
    @classmethod
    def _dedupe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


class AgentRecord(AgentInput):
    """An agent as stored and answered (status is set through its own endpoint)."""

    id: AgentId
    status: AgentStatus = "invisible"
    status_changed_at: AwareDatetime | None = None
    updated_at: AwareDatetime


class AgentPage(BaseModel):
    items: list[AgentRecord]


class StatusInput(BaseModel):
    """The body of `PUT /api/v1/agents/{agent_id}/status`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: AgentStatus


class IssuedToken(BaseModel):
    """A new agent token: `token` is shown this once and stored only as a hash."""

    token: str
    token_id: str
    agent_id: str


class TokenInfo(BaseModel):
    token_id: str
    created_at: AwareDatetime
    created_by: str


class TokenPage(BaseModel):
    items: list[TokenInfo]


_M = TypeVar("_M", bound=BaseModel)


def parse_body(model: type[_M], body: Any) -> _M:
    """Validate a request body against `model`.

    Raises:
        InvalidInputError: naming the first offending field.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


# --- numbers listing and service hours ----------------------------------------------------


class NumberSummary(BaseModel):
    phone_number_id: str
    display_name: str | None
    version: int


class NumberPage(BaseModel):
    items: list[NumberSummary]


class HoursAnswer(BaseModel):
    """`GET /api/v1/numbers/{id}/hours`: whether the number is open at `at`, and why."""

    at: AwareDatetime = Field(description="The instant asked about, in the number's offset.")
    open: bool
    next_opening: AwareDatetime | None = Field(
        description="In the number's offset; equals `at` when open; null when it does not "
        "open within a year."
    )
    reason: str = Field(
        description="The rule that decided: always_open, weekly, exception, holiday, closed_day"
    )
    label: str | None = Field(None, description="The exception's label or the holiday's name.")
