"""Splits a webhook body into the items deskline claims: one per message, one per status.

This is the handler's "parse" step, kept pure. It checks the envelope's structure only (JSON
object, `entry` list, `changes` objects, `messages`/`statuses` lists of objects, a
`phone_number_id`); the content of each message is typed later, in the first job, where a type
we do not model becomes "unsupported" instead of a refused webhook (Meta would redeliver a
refused one for days).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bot.errors import WebhookPayloadError

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


@dataclass(slots=True)
class SplitWebhook:
    items: list[IntakeItem] = field(default_factory=list)
    # Raw JSON of changes that are not messages/statuses, kept for operators.
    other: list[str] = field(default_factory=list)


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


def split_webhook(body: bytes) -> SplitWebhook:
    """Parse a webhook body into claimable items.

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
                out.other.append(_dumps({"object": obj, "entry_id": entry.get("id"), **change}))
                continue
            _split_messages_value(value, path, out)
    return out


def _split_messages_value(value: dict[str, Any], path: str, out: SplitWebhook) -> None:
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
        out.items.append(IntakeItem("message", wamid, pnid, _dumps(raw)))
    for status in statuses:
        sid = _text_id(status.get("id")) or _synthetic_id(pnid, status)
        state = status.get("status") if isinstance(status.get("status"), str) else "unknown"
        raw = {"phone_number_id": pnid, "status": status}
        out.items.append(IntakeItem("status", f"{sid}:{state}", pnid, _dumps(raw)))
    errors = value.get("errors")
    if errors:
        # Value-level errors (WHATSAPP.md section 6): nothing to process, but worth keeping.
        out.other.append(_dumps({"phone_number_id": pnid, "field": "messages", "errors": errors}))
