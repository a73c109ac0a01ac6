"""Meta's message bodies (POST /{phone_number_id}/messages), built within Meta's limits.

Limits from WHATSAPP.md section 8: text body 4,096 characters; interactive body 1,024, footer 60,
at most 3 reply buttons with titles of 20 characters and ids of 256. A builder never sends a body
Meta would refuse for length: long texts are cut with an ellipsis, since an auto-reply that goes
out shortened beats one refused with error 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
FOOTER_MAX = 60
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
MAX_BUTTONS = 3


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def recipient(wa_id: str | None, user_id: str | None = None) -> str:
    """`to`: E.164 with "+" (without it Meta prepends the business' country code), else BSUID."""
    if wa_id:
        return wa_id if wa_id.startswith("+") else "+" + wa_id
    if user_id:
        return user_id
    raise ValueError("a recipient needs a wa_id or a user_id")


def _envelope(to: str, kind: str, content: dict[str, Any], tag: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
    }
    if tag:
        # Echoed back on this message's status webhooks: reconciles a send whose response was
        # lost (the Graph API has no idempotency key).
        body["biz_opaque_callback_data"] = tag[:512]
    return body


def text(
    to: str, body: str, *, preview_url: bool = False, tag: str | None = None
) -> dict[str, Any]:
    return _envelope(to, "text", {"preview_url": preview_url, "body": _cut(body, TEXT_MAX)}, tag)


def reply_buttons(
    to: str,
    body: str,
    buttons: Sequence[tuple[str, str]],
    *,
    footer: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """Interactive reply buttons: `buttons` is [(id, title)], at most 3."""
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError("reply buttons take 1 to 3 buttons")
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": _cut(body, INTERACTIVE_BODY_MAX)},
        "action": {
            "buttons": [
                {
                    "type": "reply",
                    "reply": {"id": bid[:BUTTON_ID_MAX], "title": _cut(title, BUTTON_TITLE_MAX)},
                }
                for bid, title in buttons
            ]
        },
    }
    if footer:
        interactive["footer"] = {"text": _cut(footer, FOOTER_MAX)}
    return _envelope(to, "interactive", interactive, tag)


def contact_card(to: str, name: str, phone: str, *, tag: str | None = None) -> dict[str, Any]:
    """A WhatsApp contact card (type `contacts`) for one person with one phone."""
    digits = "".join(c for c in phone if c.isdigit())
    first, _, last = name.partition(" ")
    person_name: dict[str, Any] = {"formatted_name": name, "first_name": first or name}
    if last:
        person_name["last_name"] = last
    card = {
        "name": person_name,
        "phones": [{"phone": "+" + digits, "type": "WORK", "wa_id": digits}],
    }
    body = _envelope(to, "contacts", {}, tag)
    body["contacts"] = [card]
    return body


def template(
    to: str,
    name: str,
    language: str,
    variables: Sequence[str] = (),
    *,
    tag: str | None = None,
) -> dict[str, Any]:
    """A template message with positional body parameters ({{1}}, {{2}} ...)."""
    content: dict[str, Any] = {"name": name, "language": {"code": language}}
    if variables:
        content["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": v} for v in variables]}
        ]
    return _envelope(to, "template", content, tag)


def summary(body: dict[str, Any]) -> str:
    """A human-readable line of what a body says, for timelines and transcripts."""
    kind = body.get("type")
    if kind == "text":
        return str(body["text"]["body"])
    if kind == "interactive":
        # The buttons too: a transcript of the after-hours reply shows what the customer could tap.
        buttons = body["interactive"].get("action", {}).get("buttons", [])
        titles = " ".join(f"[{b['reply']['title']}]" for b in buttons if "reply" in b)
        return f"{body['interactive']['body']['text']}\n{titles}".strip()
    if kind == "contacts":
        card = body["contacts"][0]
        return f"{card['name']['formatted_name']} {card['phones'][0]['phone']}"
    if kind == "template":
        params = body["template"].get("components", [{}])[0].get("parameters", [])
        values = ", ".join(p.get("text", "") for p in params)
        return f"[template {body['template']['name']}] {values}".strip()
    return f"[{kind}]"
