"""WhatsApp message templates: the Graph API's list (cached) and those admins register by hand.

Active messages (business-initiated, outside the 24-hour window) must be approved templates.
Deskline reads them from `GET /{waba_id}/message_templates` when it has WABA access and keeps
the last copy in Redis (fresh for an hour, kept a week to serve while the Graph API is down);
without WABA access an admin registers the templates deskline may send, with their body text,
so that the variables can still be checked before anything goes to Meta.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from bot.domain.errors import InvalidInputError
from storage import keys

# {{1}}, {{ 2 }}: Meta's positional parameters; {{first_name}}: named ones.
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
# Meta refuses a parameter with a new line, a tab or more than 4 consecutive spaces (132018).
_BAD_PARAMETER: Final = re.compile(r"[\n\r\t]| {5,}")
PARAMETER_MAX: Final = 1024
BODY_MAX: Final = 1024
APPROVED: Final = "APPROVED"

TemplateSource = Literal["graph", "registered"]


def _placeholders(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(text)))


class Template(BaseModel):
    """A template deskline may send, reduced to what checking and sending it needs."""

    model_config = ConfigDict(frozen=True)

    name: str
    language: str
    body: str = Field(description="the BODY component's text, with {{1}}, {{2}}...")
    status: str = APPROVED
    category: str | None = None
    source: TemplateSource
    unsupported: str | None = Field(
        None, description="why deskline cannot send it (parameters outside the body)"
    )

    @property
    def variables(self) -> int:
        """How many body parameters it takes."""
        return len(_placeholders(self.body))

    @property
    def positional(self) -> bool:
        """Whether its body parameters are Meta's positional ones ({{1}}), not named."""
        return all(n.isdigit() for n in _placeholders(self.body))

    def check(self, variables: Sequence[str]) -> None:
        """Whether `variables` fill this template's body.

        Raises:
            InvalidInputError: `template` when it cannot be sent (not approved, parameters
                outside the body, named parameters); `variables` when the count differs;
                `variables[i]` for an empty or malformed value.
        """
        where = f"template {self.name} ({self.language})"
        if self.status != APPROVED:
            raise InvalidInputError(f"{where} is {self.status}, not {APPROVED}", "template")
        if self.unsupported:
            raise InvalidInputError(f"{where} needs {self.unsupported}", "template")
        if not self.positional:
            raise InvalidInputError(f"{where} uses named parameters", "template")
        if len(variables) != self.variables:
            raise InvalidInputError(
                f"{where} takes {self.variables} variable(s) in its body; got {len(variables)}",
                "variables",
            )
        for i, value in enumerate(variables):
            field = f"variables[{i}]"
            if not value.strip():
                raise InvalidInputError(f"{field} ({{{{{i + 1}}}}}) must not be empty", field)
            if len(value) > PARAMETER_MAX:
                raise InvalidInputError(f"{field} is longer than {PARAMETER_MAX}", field)
            if _BAD_PARAMETER.search(value):
                raise InvalidInputError(
                    f"{field} must not contain new lines, tabs or more than 4 spaces in a row"
                    " (Meta refuses them)",
                    field,
                )


def from_graph(item: Mapping[str, Any]) -> Template | None:
    """A template from one entry of Meta's `message_templates` list (None when unusable).

    See https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates
    """
    name, language = item.get("name"), item.get("language")
    if not isinstance(name, str) or not isinstance(language, str):
        return None
    body = ""
    unsupported: list[str] = []
    components = item.get("components")
    for component in components if isinstance(components, list) else []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        text = component.get("text")
        if kind == "BODY" and isinstance(text, str):
            body = text
        elif kind == "HEADER":
            fmt = str(component.get("format", "TEXT")).upper()
            if fmt != "TEXT" or (isinstance(text, str) and _placeholders(text)):
                unsupported.append("header parameters")
        elif kind == "BUTTONS":
            buttons = component.get("buttons")
            for button in buttons if isinstance(buttons, list) else []:
                if isinstance(button, dict) and (
                    _placeholders(str(button.get("url", "")))
                    or str(button.get("type", "")).upper() in ("COPY_CODE", "OTP", "FLOW")
                ):
                    unsupported.append("button parameters")
                    break
    return Template(
        name=name,
        language=language,
        body=body,
        status=str(item.get("status", APPROVED)).upper(),
        category=str(item["category"]) if item.get("category") else None,
        source="graph",
        unsupported=", ".join(unsupported) or None,
    )


class TemplateInput(BaseModel):
    """`PUT /api/v1/templates/{name}/{language}`: a template an admin registers by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str = Field(
        min_length=1, max_length=BODY_MAX, description="the body text as approved, with {{1}}..."
    )
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"] | None = None


class TemplateView(BaseModel):
    """A template as the API lists it."""

    model_config = ConfigDict(frozen=True)

    name: str
    language: str
    body: str
    variables: int = Field(description="how many body parameters it takes")
    status: str
    category: str | None
    source: TemplateSource
    unsupported: str | None

    @classmethod
    def of(cls, template: Template) -> TemplateView:
        return cls(
            name=template.name,
            language=template.language,
            body=template.body,
            variables=template.variables,
            status=template.status,
            category=template.category,
            source=template.source,
            unsupported=template.unsupported,
        )


class TemplatePage(BaseModel):
    items: list[TemplateView]
    fetched_at: AwareDatetime | None = Field(
        None, description="when the Graph API's list was last read (null: never, or no WABA)"
    )


@dataclass(frozen=True, slots=True)
class GraphCopy:
    """The last list read from the Graph API."""

    templates: list[Template]
    fetched_at: datetime

    def find(self, name: str, language: str) -> Template | None:
        return next((t for t in self.templates if (t.name, t.language) == (name, language)), None)


class TemplatesStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def graph_copy(self, waba_id: str) -> GraphCopy | None:
        """The last list read from the Graph API for `waba_id`, or None."""
        raw = await self._redis.get(keys.graph_templates(waba_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return GraphCopy(
            templates=[Template.model_validate(t) for t in data["templates"]],
            fetched_at=datetime.fromtimestamp(data["fetched_at_ms"] / 1000, UTC),
        )

    async def save_graph_copy(
        self, waba_id: str, templates: Sequence[Template], fetched_at: datetime
    ) -> GraphCopy:
        """Replace the cached list (TTL keys.TEMPLATES_CACHE_TTL_S)."""
        data = {
            "fetched_at_ms": int(fetched_at.timestamp() * 1000),
            "templates": [t.model_dump(mode="json") for t in templates],
        }
        await self._redis.set(
            keys.graph_templates(waba_id),
            json.dumps(data, separators=(",", ":")),
            ex=keys.TEMPLATES_CACHE_TTL_S,
        )
        return GraphCopy(list(templates), fetched_at)

    async def registered(self) -> list[Template]:
        """Templates admins registered, by name then language."""
        raw = await self._redis.hgetall(keys.REGISTERED_TEMPLATES)
        templates = [Template.model_validate_json(v) for v in raw.values()]
        return sorted(templates, key=lambda t: (t.name, t.language))

    async def find_registered(self, name: str, language: str) -> Template | None:
        raw = await self._redis.hget(keys.REGISTERED_TEMPLATES, f"{name}:{language}")
        return None if raw is None else Template.model_validate_json(raw)

    async def register(self, template: Template) -> bool:
        """Create or replace a registered template; True when it was created."""
        created = await self._redis.hset(
            keys.REGISTERED_TEMPLATES,
            f"{template.name}:{template.language}",
            template.model_dump_json(),
        )
        return bool(created)

    async def unregister(self, name: str, language: str) -> bool:
        """Forget a registered template; False when there was none."""
        return bool(await self._redis.hdel(keys.REGISTERED_TEMPLATES, f"{name}:{language}"))
