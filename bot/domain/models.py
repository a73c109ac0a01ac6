"""Pydantic models: the inbound Meta payload parts deskline reads, and its domain records.

Webhook models are frozen and ignore unknown fields (Meta adds fields without notice). They are
lenient where real payloads vary: numbers where strings are documented (integer `timestamp`,
`quantity`), absent optional parts, placeholder values. The one way in for an inbound message
is `InboundMessage.from_claim`, which never raises: a type we do not model, or a known type
whose typed part does not validate, becomes type "unsupported" with the raw message kept.
Reference: shared/WHATSAPP.md sections 4 and 5.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The 24-hour customer service window (WHATSAPP.md section 10).
WINDOW: Final = timedelta(hours=24)

# Unix seconds deskline accepts as a timestamp: 1970 up to the end of year 9999.
_MAX_EPOCH_S: Final = 253_402_300_799


class _Payload(BaseModel):
    """Base of every webhook model: immutable, extras ignored, numbers accepted as strings."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", coerce_numbers_to_str=True, populate_by_name=True
    )


def parse_timestamp(value: Any) -> datetime | None:
    """Meta's Unix-seconds timestamp (a string, sometimes an integer) as UTC, else None."""
    if isinstance(value, bool):
        return None
    seconds: float
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_EPOCH_S:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _text_or_none(value: Any) -> str | None:
    """A non-empty identifier: strings as they are, integers as digits, anything else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# --- message parts ----------------------------------------------------------------------------


class Text(_Payload):
    body: str


class Media(_Payload):
    """image, audio, video, document and sticker: the same shape with a few optional flags."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    # Download URL carried by newer webhooks (from Nov 2025); older ones need GET /<id>.
    url: str | None = None
    voice: bool | None = None  # audio: a recorded voice note
    animated: bool | None = None  # sticker


class Location(_Payload):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _placeholder_is_none(cls, value: Any) -> Any:
        # Library fixtures carry "LATITUDE"-style placeholders; the rest of the pin still counts.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return value


class ContactName(_Payload):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(_Payload):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class ContactEmail(_Payload):
    email: str | None = None
    type: str | None = None


class ContactAddress(_Payload):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactOrg(_Payload):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactUrl(_Payload):
    url: str | None = None
    type: str | None = None


class SharedContact(_Payload):
    """One vCard-like card of a `contacts` message."""

    name: ContactName | None = None
    phones: tuple[ContactPhone, ...] = ()
    emails: tuple[ContactEmail, ...] = ()
    addresses: tuple[ContactAddress, ...] = ()
    org: ContactOrg | None = None
    urls: tuple[ContactUrl, ...] = ()
    birthday: str | None = None


class Contacts(_Payload):
    """The `contacts` message type: Meta sends a bare list; it is wrapped here."""

    contacts: tuple[SharedContact, ...]


class ButtonReply(_Payload):
    id: str
    title: str | None = None


class ListReply(_Payload):
    id: str
    title: str | None = None
    description: str | None = None


class NfmReply(_Payload):
    """A WhatsApp Flow (or address message) completion."""

    name: str | None = None
    body: str | None = None
    # Documented as a JSON *string*; seen invalid or null in the wild (chatwoot fixtures).
    response_json: str | None = None

    @field_validator("response_json", mode="before")
    @classmethod
    def _dump_objects(cls, value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"))
        return value

    def response(self) -> dict[str, Any] | None:
        """`response_json` parsed, or None when it is absent, not JSON, or not an object."""
        if self.response_json is None:
            return None
        try:
            parsed = json.loads(self.response_json)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, dict) else None


INTERACTIVE_TYPES: Final = frozenset({"button_reply", "list_reply", "nfm_reply"})


class Interactive(_Payload):
    """A reply to one of our interactive messages (reply button, list row, flow)."""

    type: str
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: NfmReply | None = None

    @model_validator(mode="after")
    def _known_with_its_part(self) -> Interactive:
        # Unknown kinds (payment_method, ...) and a kind without its object are "unsupported".
        if self.type not in INTERACTIVE_TYPES or getattr(self, self.type) is None:
            raise ValueError(f"interactive.{self.type} is not a reply deskline reads")
        return self


class Button(_Payload):
    """A template quick-reply tap: `payload` is what we set on the template button."""

    payload: str | None = None
    text: str | None = None


class Reaction(_Payload):
    message_id: str | None = None
    # Absent or "" when the customer removed their reaction.
    emoji: str | None = None


class ProductItem(_Payload):
    product_retailer_id: str | None = None
    # Documented as numbers; library fixtures carry strings, so both are kept as text.
    quantity: str | None = None
    item_price: str | None = None
    currency: str | None = None


class Order(_Payload):
    catalog_id: str | None = None
    text: str | None = None
    product_items: tuple[ProductItem, ...] = ()


class System(_Payload):
    """user_changed_number (new `wa_id`), customer_identity_changed, user_changed_user_id."""

    type: str | None = None
    body: str | None = None
    wa_id: str | None = None
    customer: str | None = None
    user_id: str | None = None
    previous_user_id: str | None = None


class Unsupported(_Payload):
    """What could not be read: Meta's `unsupported.type`, or the type we could not model."""

    type: str | None = None


class Edit(_Payload):
    """The customer edited an earlier message; `message` is the new content (type + part)."""

    original_message_id: str
    message: dict[str, Any] | None = None


class Revoke(_Payload):
    """The customer deleted an earlier message."""

    original_message_id: str


Content: TypeAlias = (
    Text
    | Media
    | Location
    | Contacts
    | Interactive
    | Button
    | Reaction
    | Order
    | System
    | Edit
    | Revoke
    | Unsupported
)

MEDIA_TYPES: Final = frozenset({"image", "audio", "video", "document", "sticker"})

_PARTS: Final[dict[str, type[_Payload]]] = {
    "text": Text,
    **dict.fromkeys(MEDIA_TYPES, Media),
    "location": Location,
    "interactive": Interactive,
    "button": Button,
    "reaction": Reaction,
    "order": Order,
    "system": System,
    "edit": Edit,
    "revoke": Revoke,
}

# Meta's names for "a message we cannot show you" (`unknown` is the older one).
UNSUPPORTED_TYPES: Final = frozenset({"unsupported", "unknown"})


def _parse_part(mtype: str, message: Mapping[str, Any]) -> Content:
    """The typed part of a message of type `mtype`.

    Raises:
        ValidationError / ValueError / TypeError: unknown type, or a part that does not validate.
    """
    if mtype == "contacts":
        return Contacts.model_validate({"contacts": message.get("contacts")})
    model = _PARTS.get(mtype)
    if model is None:
        raise ValueError(f"message type {mtype!r} is not modelled")
    part = model.model_validate(message.get(mtype))
    assert isinstance(part, Content)  # every model in _PARTS is a member of the union
    return part


def _summary(part: Content) -> str | None:
    """A short human-readable text of a message, for the timeline and the decisions."""
    match part:
        case Text(body=body):
            return body
        case Media(caption=caption, filename=filename):
            return caption or filename
        case Location():
            label = ", ".join(p for p in (part.name, part.address) if p)
            if label or part.latitude is None or part.longitude is None:
                return label or None
            return f"{part.latitude:.6f},{part.longitude:.6f}"
        case Contacts(contacts=cards):
            names = [c.name.formatted_name for c in cards if c.name and c.name.formatted_name]
            return ", ".join(names) or None
        case Interactive(button_reply=ButtonReply() as reply):
            return reply.title or reply.id
        case Interactive(list_reply=ListReply() as row):
            return row.title or row.id
        case Interactive(nfm_reply=NfmReply() as flow):
            return flow.body
        case Button(text=text, payload=payload):
            return text or payload
        case Reaction(emoji=emoji):
            return emoji or None
        case Order(text=text, product_items=items):
            return text or f"{len(items)} item(s)"
        case System(body=body):
            return body
        case Edit(message=dict() as new):
            new_type = new.get("type")
            if isinstance(new_type, str):
                try:
                    return _summary(_parse_part(new_type, new))
                except (ValidationError, ValueError, TypeError, RecursionError):
                    return None
            return None
        case _:
            return None


class MessageContext(_Payload):
    """Replies, forwards and product enquiries (WHATSAPP.md 4.1)."""

    from_: str | None = Field(None, alias="from")
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: dict[str, Any] | None = None


class WelcomeMessage(_Payload):
    text: str | None = None


class Referral(_Payload):
    """Click-to-WhatsApp ad data on the first message after an ad (WHATSAPP.md 4.2)."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    body: str | None = None
    headline: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None
    welcome_message: WelcomeMessage | None = None


class MetaError(_Payload):
    """An error object as Meta sends it in messages[].errors and statuses[].errors."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    details: str | None = None
    href: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift_details(cls, value: Any) -> Any:
        if isinstance(value, dict) and "details" not in value:
            data = value.get("error_data")
            if isinstance(data, dict) and "details" in data:
                return {**value, "details": data["details"]}
        return value

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        # Placeholders ("CODE") must not cost us the rest of the error.
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            return None
        return value


def _optional(model: type[_Payload], value: Any) -> Any:
    """`model` validated from `value`, or None when absent or malformed (raw keeps it)."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except (ValidationError, ValueError, TypeError):
        return None


def _errors(value: Any) -> tuple[MetaError, ...]:
    if not isinstance(value, list):
        return ()
    parsed = (_optional(MetaError, e) for e in value)
    return tuple(e for e in parsed if e is not None)


def synthetic_id(payload: Mapping[str, Any]) -> str:
    """A stable id for an item that carries none: a digest of its content."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "dl." + hashlib.sha256(canonical.encode()).hexdigest()[:40]


# --- the inbound message record ---------------------------------------------------------------


class InboundMessage(BaseModel):
    """One customer message as deskline handles it, built by `from_claim`.

    Attributes:
        wamid: Meta's message id (the claim key), or a synthetic one when Meta gave none.
        wa_id / user_id: the sender's phone-number id and business-scoped user id; at least
            one is set unless the message came with no sender at all.
        sender: `wa_id`, else `user_id`.
        timestamp: Meta's timestamp, or the receipt time when it is missing or unparsable.
        type: Meta's type, or "unsupported" for anything deskline cannot read.
        meta_type: the type exactly as Meta sent it (None when absent).
        text: a short readable summary (text body, caption, button title, ...).
        button_reply_id: the id of a reply button, or the payload of a template button.
        raw: the message object as received.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    phone_number_id: str
    display_phone_number: str | None = None
    wamid: str
    wa_id: str | None = None
    user_id: str | None = None
    profile_name: str | None = None
    timestamp: datetime
    timestamp_estimated: bool = False
    type: str
    meta_type: str | None = None
    text: str | None = None
    button_reply_id: str | None = None
    content: Content | None = None
    context: MessageContext | None = None
    referral: Referral | None = None
    errors: tuple[MetaError, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def sender(self) -> str | None:
        return self.wa_id or self.user_id

    @property
    def opens_window(self) -> bool:
        """Whether this message (re)opens the 24-hour window: anything the customer sent.

        `system` messages are WhatsApp's notices (number changed, ...), not the customer writing.
        """
        return self.type != "system"

    @classmethod
    def from_claim(
        cls,
        item: Any,
        *,
        wamid: str | None = None,
        received_at: datetime | None = None,
    ) -> InboundMessage:
        """Build the record from a claimed intake item. Never raises, whatever JSON it gets.

        Args:
            item: `{"phone_number_id", "display_phone_number", "contact", "message"}` as
                `bot.domain.envelope` stored it (anything else degrades to an "unsupported" record).
            wamid: the claim id; wins over `message.id` (which may be absent).
            received_at: used when Meta's timestamp is missing or unparsable; the default is
                the Unix epoch, so that the fallback is deterministic.
        """
        data: Mapping[str, Any] = item if isinstance(item, dict) else {}
        raw_message = data.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        contact_value = data.get("contact")
        contact: Mapping[str, Any] = contact_value if isinstance(contact_value, dict) else {}
        pnid = _text_or_none(data.get("phone_number_id")) or ""
        display = _text_or_none(data.get("display_phone_number"))

        wa_id = _text_or_none(message.get("from"))
        user_id = _text_or_none(message.get("from_user_id"))
        c_wa_id = _text_or_none(contact.get("wa_id"))
        c_user_id = _text_or_none(contact.get("user_id"))
        if wa_id is None and user_id is None:
            # No sender on the message itself (BSUID-only, some system messages): the envelope
            # matched at most one contact to it, which is then the sender.
            wa_id, user_id = c_wa_id, c_user_id
        system = message.get("system")
        if wa_id is None and user_id is None and isinstance(system, dict):
            # user_changed_user_id / user_changed_number without `from`: the customer's
            # current identity is the one the notice announces.
            wa_id = _text_or_none(system.get("wa_id"))
            user_id = _text_or_none(system.get("user_id"))
        matches = (c_wa_id is not None and c_wa_id == wa_id) or (
            c_user_id is not None and c_user_id == user_id
        )
        contradicts = (c_wa_id is not None and wa_id is not None and c_wa_id != wa_id) or (
            c_user_id is not None and user_id is not None and c_user_id != user_id
        )
        profile_name: str | None = None
        if matches and not contradicts:
            if user_id is None:
                user_id = c_user_id
            profile = contact.get("profile")
            if isinstance(profile, dict):
                profile_name = _text_or_none(profile.get("name"))

        timestamp = parse_timestamp(message.get("timestamp"))
        estimated = timestamp is None
        if timestamp is None:
            timestamp = (
                received_at.astimezone(UTC) if received_at else datetime.fromtimestamp(0, tz=UTC)
            )

        meta_type = message.get("type") if isinstance(message.get("type"), str) else None
        mtype = meta_type or "unsupported"
        content: Content | None
        if mtype in UNSUPPORTED_TYPES:
            mtype = "unsupported"
            content = _optional(Unsupported, message.get("unsupported")) or Unsupported()
        else:
            try:
                content = _parse_part(mtype, message)
            except (ValidationError, ValueError, TypeError, RecursionError):
                content, mtype = Unsupported(type=meta_type), "unsupported"

        text = None if isinstance(content, Unsupported) else _summary(content)
        button_reply_id: str | None = None
        if isinstance(content, Interactive) and content.button_reply is not None:
            button_reply_id = content.button_reply.id
        elif isinstance(content, Button):
            button_reply_id = content.payload

        return cls(
            phone_number_id=pnid,
            display_phone_number=display,
            wamid=wamid or _text_or_none(message.get("id")) or synthetic_id(data),
            wa_id=wa_id,
            user_id=user_id,
            profile_name=profile_name,
            timestamp=timestamp,
            timestamp_estimated=estimated,
            type=mtype,
            meta_type=meta_type,
            text=text,
            button_reply_id=button_reply_id,
            content=content,
            context=_optional(MessageContext, message.get("context")),
            referral=_optional(Referral, message.get("referral")),
            errors=_errors(message.get("errors")),
            raw=message,
        )


# --- statuses ---------------------------------------------------------------------------------

StatusName: TypeAlias = Literal["sent", "delivered", "read", "failed", "played", "other"]
_STATUSES: Final = frozenset({"sent", "delivered", "read", "failed", "played"})


class Conversation(_Payload):
    id: str | None = None
    expiration_timestamp: str | None = None
    origin: dict[str, Any] | None = None


class Pricing(_Payload):
    billable: bool | None = None
    pricing_model: str | None = None
    type: str | None = None
    category: str | None = None


class StatusUpdate(BaseModel):
    """A delivery status of a message deskline sent (WHATSAPP.md section 5).

    `status` is "other" for values deskline does not track (`deleted`, `warning`, ...);
    `meta_status` keeps what Meta sent.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    status: StatusName
    meta_status: str | None = None
    timestamp: datetime
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    phone_number_id: str | None = None
    errors: tuple[MetaError, ...] = ()
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    biz_opaque_callback_data: str | None = None

    @classmethod
    def from_claim(
        cls,
        item: Any,
        *,
        claim_id: str | None = None,
        received_at: datetime | None = None,
    ) -> StatusUpdate:
        """Build the update from a claimed status item. Never raises.

        Args:
            item: `{"phone_number_id", "status": {...}}` as `bot.domain.envelope` stored it.
            claim_id: "<message id>:<status>"; gives the id when the status carries none.
            received_at: used when Meta's timestamp is missing or unparsable.
        """
        data: Mapping[str, Any] = item if isinstance(item, dict) else {}
        raw_status = data.get("status")
        status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        meta_status = status.get("status") if isinstance(status.get("status"), str) else None
        name = cast(StatusName, meta_status if meta_status in _STATUSES else "other")
        message_id = _text_or_none(status.get("id"))
        if message_id is None and claim_id:
            suffix = ":" + (meta_status or "unknown")
            message_id = claim_id.removesuffix(suffix) if claim_id.endswith(suffix) else claim_id
        timestamp = parse_timestamp(status.get("timestamp"))
        if timestamp is None:
            timestamp = (
                received_at.astimezone(UTC) if received_at else datetime.fromtimestamp(0, tz=UTC)
            )
        callback = status.get("biz_opaque_callback_data")
        return cls(
            id=message_id or synthetic_id(data),
            status=name,
            meta_status=meta_status,
            timestamp=timestamp,
            recipient_id=_text_or_none(status.get("recipient_id")),
            recipient_user_id=_text_or_none(status.get("recipient_user_id")),
            phone_number_id=_text_or_none(data.get("phone_number_id")),
            errors=_errors(status.get("errors")),
            conversation=_optional(Conversation, status.get("conversation")),
            pricing=_optional(Pricing, status.get("pricing")),
            biz_opaque_callback_data=callback if isinstance(callback, str) else None,
        )


# --- domain records ---------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Contact(_Record):
    """A customer as seen by one number; kept forever.

    `key` is the contact key (`bot.domain.phones.contact_key`): Brazilian numbers with and without
    the
    mobile ninth digit share it. `last_inbound_at` is Meta's timestamp of the customer's latest
    message and opens the 24-hour window.
    """

    phone_number_id: str
    key: str
    name: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    phone: str | None = None
    email: str | None = None
    city: str | None = None
    document: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    first_seen: datetime
    last_inbound_at: datetime | None = None
    last_interaction_at: datetime | None = None

    def window_open(self, now: datetime) -> bool:
        """True while `now` is within 24 hours after the customer's last message."""
        if self.last_inbound_at is None:
            return False
        # A message stamped slightly after `now` (clock skew) counts as open too.
        return now < self.last_inbound_at + WINDOW


class TimelineEntry(_Record):
    """One message in or out on a contact's timeline (compact: no raw payload)."""

    id: str
    direction: Literal["in", "out"]
    at: datetime
    type: str | None = None
    kind: str | None = None
    text: str | None = None
    button_reply_id: str | None = None
    # An outgoing entry's send key (ReplyRequest.natural_key): joins an agent's reply on a
    # ticket (`agent:<ticket>:<key>`) to the message Meta accepted.
    natural_key: str | None = None


DeliveryState: TypeAlias = Literal["accepted", "sent", "delivered", "read", "played", "failed"]


class OutgoingMessage(_Record):
    """A message deskline sent, with its delivery state (one-way: see storage/outgoing.py).

    `recorded` is False for a record holding only statuses that arrived before `record_sent`.
    """

    message_id: str
    recorded: bool = True
    phone_number_id: str | None = None
    wa_id: str | None = None
    kind: str | None = None
    natural_key: str | None = None
    body_type: str | None = None
    state: DeliveryState
    accepted_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    played_at: datetime | None = None
    failed_at: datetime | None = None
    errors: tuple[MetaError, ...] = ()
    # The ticket the message was sent on (the contact's active ticket when it went out).
    ticket_id: str | None = None
