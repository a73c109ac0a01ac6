"""Splits a webhook body into the items deskline claims: one per message, one per status.

This is the handler's "parse" step, kept pure. It checks the envelope's structure only (JSON
object, `entry` list, `changes` objects, `messages`/`statuses` lists of objects, a
`phone_number_id`); the content of each message is typed later, in the first job, where a type
we do not model becomes "unsupported" instead of a refused webhook (Meta would redeliver a
refused one for days).

It also bounds what one signed item may put in Redis: an item over `max_item_bytes` (raw
JSON) is replaced by a small stand-in marked `"deskline_truncated": true`, which keeps what
identifies and routes it. Refusing it instead would make Meta redeliver it for days, and
storing it whole would let a few signed bodies fill Redis.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bot.domain.errors import WebhookPayloadError

WABA_OBJECT = "whatsapp_business_account"


@dataclass(frozen=True, slots=True)
class IntakeItem:
    """One message or status of a webhook, ready to be claimed.

    Attributes:
        kind: "message" or "status".
        claim_id: the natural key: the message id, or "<message id>:<status>".
        phone_number_id: the number it belongs to.
        raw: the JSON stored as the claim's value (the item with its routing context).
    """

    kind: str
    claim_id: str
    phone_number_id: str
    raw: str


@dataclass(frozen=True, slots=True)
class Oversize:
    """One item stored as a stand-in: its kind, its type, status or field name, its size."""

    kind: str  # "message", "status" or "other"
    detail: str | None
    size: int


@dataclass(slots=True)
class SplitWebhook:
    items: list[IntakeItem] = field(default_factory=list)
    # Raw JSON of changes that are not messages/statuses, kept for operators.
    other: list[str] = field(default_factory=list)
    # The items (of `items` and `other`) that were over the limit and are stand-ins.
    oversize: list[Oversize] = field(default_factory=list)


# Default for `split_webhook(max_item_bytes=...)`; the handler passes `settings.max_item_bytes`.
MAX_ITEM_BYTES = 64 * 1024
# A field kept in a stand-in must be at most this long (Meta's ids are under 100 characters);
# a longer one is dropped, so that a stand-in stays a few hundred bytes whatever it replaces.
_SHORT = 256
_MESSAGE_FIELDS = ("id", "from", "from_user_id", "type", "timestamp")
_STATUS_FIELDS = ("id", "status", "timestamp", "recipient_id", "recipient_user_id")
_OTHER_FIELDS = ("object", "entry_id", "field", "phone_number_id")
_TRUNCATED = "deskline_truncated"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _objects(value: Any, path: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise WebhookPayloadError(f"{path} must be a list of objects", field=path)
    return value


def _synthetic_id(phone_number_id: str, item: dict[str, Any]) -> str:
    # Some sources omit `id` (chatwoot's fixtures). The same content must map to the same key,
    # or redeliveries would not be recognised, so the id is a digest of the item itself.
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"))
    return "dl." + hashlib.sha256(f"{phone_number_id}|{canonical}".encode()).hexdigest()[:40]


def _text_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _contact_for(message: dict[str, Any], contacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    sender = message.get("from") or None
    user_id = message.get("from_user_id") or None
    for contact in contacts:
        if sender and contact.get("wa_id") == sender:
            return contact
        if user_id and contact.get("user_id") == user_id:
            return contact
    return contacts[0] if len(contacts) == 1 else None


def _short(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= _SHORT
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _kept(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: obj[name] for name in names if _short(obj.get(name))}


def _oversize(raw: str, limit: int) -> int | None:
    """The UTF-8 size of `raw` when it exceeds `limit`, else None.

    A character takes at most 4 bytes (a lone surrogate 3, as U+FFFD will), so the usual
    small item is judged by its length alone, without encoding it.
    """
    if len(raw) * 4 <= limit:
        return None
    size = len(raw.encode("utf-8", errors="surrogatepass"))
    return size if size > limit else None


def _short_claim_id(claim_id: str, phone_number_id: str) -> str:
    # A stand-in must not keep a huge claim id either (it is part of a Redis key). The digest
    # is deterministic, so a redelivery still finds the same claim.
    if len(claim_id) <= 2 * _SHORT:
        return claim_id
    return _synthetic_id(phone_number_id, {"claim_id": claim_id})


def split_webhook(body: bytes, *, max_item_bytes: int = MAX_ITEM_BYTES) -> SplitWebhook:
    """Parse a webhook body into claimable items.

    An item whose raw JSON is over `max_item_bytes` becomes a stand-in (module docstring) and
    is listed in `oversize`; it never makes the split fail.

    Raises:
        WebhookPayloadError: not JSON, or not an envelope; `field` names the offending part.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError("body is not valid JSON", field=None) from exc
    if not isinstance(data, dict):
        raise WebhookPayloadError("body must be a JSON object", field=None)
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise WebhookPayloadError("body must have an `entry` list", field="entry")
    obj = data.get("object")
    out = SplitWebhook()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise WebhookPayloadError("entry must be an object", field=f"entry[{i}]")
        changes = _objects(entry.get("changes"), f"entry[{i}].changes")
        for j, change in enumerate(changes):
            path = f"entry[{i}].changes[{j}]"
            value = change.get("value")
            if (
                obj != WABA_OBJECT
                or change.get("field") != "messages"
                or not isinstance(value, dict)
            ):
                _add_other(
                    out, {"object": obj, "entry_id": entry.get("id"), **change}, max_item_bytes
                )
                continue
            _split_messages_value(value, path, out, max_item_bytes)
    return out


def _add_other(out: SplitWebhook, event: dict[str, Any], limit: int) -> None:
    raw = _dumps(event)
    size = _oversize(raw, limit)
    if size is not None:
        # Operators still see that such an event came, which field, and how big it was.
        name = event.get("field")
        detail = name if isinstance(name, str) and _short(name) else None
        out.oversize.append(Oversize("other", detail, size))
        raw = _dumps({**_kept(event, _OTHER_FIELDS), _TRUNCATED: True, "deskline_bytes": size})
    out.other.append(raw)


def _message_standin(raw: dict[str, Any], size: int) -> dict[str, Any]:
    """What is kept of an oversize message: enough to claim it, route it and show that it came.

    Without its content it reads back as an "unsupported" message of its Meta type
    (`InboundMessage.from_claim`), and the marker says why.
    """
    message = {**_kept(raw["message"], _MESSAGE_FIELDS), _TRUNCATED: True, "deskline_bytes": size}
    contact: dict[str, Any] | None = None
    if isinstance(raw["contact"], dict):
        contact = _kept(raw["contact"], ("wa_id", "user_id"))
        profile = raw["contact"].get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(name, str) and _short(name):
            contact["profile"] = {"name": name}
    display = raw["display_phone_number"]
    return {
        "phone_number_id": raw["phone_number_id"],
        "display_phone_number": display if _short(display) else None,
        "contact": contact,
        "message": message,
    }


def _split_messages_value(value: dict[str, Any], path: str, out: SplitWebhook, limit: int) -> None:
    metadata = value.get("metadata")
    pnid = _text_id(metadata.get("phone_number_id")) if isinstance(metadata, dict) else None
    if pnid is None:
        raise WebhookPayloadError(
            "a messages change needs metadata.phone_number_id",
            field=f"{path}.value.metadata.phone_number_id",
        )
    display = metadata.get("display_phone_number") if isinstance(metadata, dict) else None
    contacts = _objects(value.get("contacts"), f"{path}.value.contacts")
    messages = _objects(value.get("messages"), f"{path}.value.messages")
    statuses = _objects(value.get("statuses"), f"{path}.value.statuses")
    for message in messages:
        wamid = _text_id(message.get("id")) or _synthetic_id(pnid, message)
        raw = {
            "phone_number_id": pnid,
            "display_phone_number": display,
            "contact": _contact_for(message, contacts),
            "message": message,
        }
        text = _dumps(raw)
        size = _oversize(text, limit)
        if size is not None:
            mtype = message.get("type")
            kind = mtype if isinstance(mtype, str) and _short(mtype) else None
            out.oversize.append(Oversize("message", kind, size))
            wamid, text = _short_claim_id(wamid, pnid), _dumps(_message_standin(raw, size))
        out.items.append(IntakeItem("message", wamid, pnid, text))
    for status in statuses:
        sid = _text_id(status.get("id")) or _synthetic_id(pnid, status)
        state = status.get("status") if isinstance(status.get("status"), str) else "unknown"
        claim_id = f"{sid}:{state}"
        text = _dumps({"phone_number_id": pnid, "status": status})
        size = _oversize(text, limit)
        if size is not None:
            out.oversize.append(Oversize("status", state if _short(state) else None, size))
            kept = {**_kept(status, _STATUS_FIELDS), _TRUNCATED: True, "deskline_bytes": size}
            claim_id = _short_claim_id(claim_id, pnid)
            text = _dumps({"phone_number_id": pnid, "status": kept})
        out.items.append(IntakeItem("status", claim_id, pnid, text))
    errors = value.get("errors")
    if errors:
        # Value-level errors (WHATSAPP.md section 6): nothing to process, but worth keeping.
        _add_other(out, {"phone_number_id": pnid, "field": "messages", "errors": errors}, limit)
