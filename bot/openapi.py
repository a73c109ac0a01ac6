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

from bot.config import (
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
    # A model, or "merge-patch" for the NumberConfig merge patch.
    body: type[BaseModel] | Literal["merge-patch"] | None = None
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
              "Set an agent's status (the agent, admins, managers of one of its numbers)",
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
