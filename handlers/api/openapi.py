"""The OpenAPI 3.1 document of `/api/v1`, built from the operations the router serves
(`handlers.api.operations`) and the pydantic models they validate with (`model_json_schema`),
so that the document cannot drift from the code.

Per operation: path parameters from the path's placeholders (`PathParam`s), query parameters
from the JSON schema of its query model, the body and answers from their models, the error
answers every authenticated operation may give, and its security (none for the paths
`handlers.api.auth.PUBLIC_PATHS` leaves open, a bearer token otherwise). The PATCH body
schema is derived from `NumberConfig`'s: every object member optional and nullable (JSON
Merge Patch: null removes), arrays whole.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.domain.config import NumberConfig
from handlers.api.auth import PUBLIC_PATHS
from handlers.api.spec import Operation, PathParam

_REF: Final = "#/components/schemas/{model}"
_PATCH_SUFFIX: Final = "Patch"
_PLACEHOLDER: Final = re.compile(r"\{([^}]+)\}")
_NULL: Final = {"type": "null"}

# The `?token=` of an operation declared with `query_token`.
_TOKEN_PARAMETER: Final = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the bearer token, for EventSource",
}


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


def _models(operations: Sequence[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    out: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in operations:
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
    if isinstance(options, list) and _NULL in options:
        return schema
    return {"anyOf": [schema, _NULL]}


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


def _path_parameters(op: Operation, defaults: Mapping[str, PathParam]) -> list[dict[str, Any]]:
    """One parameter per `{name}` of the path, as `op.path_params` or `defaults` describe it.

    Raises:
        LookupError: a placeholder nobody describes (caught when the app is built).
    """
    overrides = {p.name: p for p in op.path_params}
    out: list[dict[str, Any]] = []
    for name in _PLACEHOLDER.findall(op.path):
        param = overrides.get(name) or defaults.get(name)
        if param is None:
            raise LookupError(f"{op.operation_id}: no PathParam describes {{{name}}}")
        item: dict[str, Any] = {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(param.schema),
        }
        if param.description:
            item["description"] = param.description
        out.append(item)
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field's schema as a query parameter's: a parameter is absent or a string,
    never null, so `anyOf: [X, null]` becomes X."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or _NULL not in options:
        return schema
    rest = [s for s in options if s != _NULL]
    outer = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**rest[0], **outer} if len(rest) == 1 else {**outer, "anyOf": rest}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters `model` validates, from its JSON schema (aliases as names)."""
    schema = model.model_json_schema(mode="validation")
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: a query model's fields must be inline types")
    required = set(schema.get("required", ()))
    out: list[dict[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null({k: v for k, v in prop.items() if k != "title"})
        description = prop.pop("description", "")
        if prop.get("default", 0) is None:
            del prop["default"]
        item: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            item["description"] = description
        out.append(item)
    return out


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


@cache
def _document(
    operations: tuple[Operation, ...], path_params: tuple[PathParam, ...]
) -> dict[str, Any]:
    refs, top = models_json_schema(_models(operations), ref_template=_REF)
    defs: dict[str, Any] = copy.deepcopy(top.get("$defs", {}))
    patches = _PatchSchemas(defs)
    error_ref = refs[(ErrorResponse, "serialization")]
    defaults = {p.name: p for p in path_params}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        public = op.url in PUBLIC_PATHS
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "description": f"{op.description}\n\nWho may call it: {op.who}."
            if op.description
            else f"Who may call it: {op.who}.",
        }
        parameters = _path_parameters(op, defaults)
        if op.query is not None:
            parameters += _query_parameters(op.query)
        if op.query_token:
            parameters.append(dict(_TOKEN_PARAMETER))
        if parameters:
            item["parameters"] = parameters
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
            elif public:
                answer["content"] = {"application/json": {"schema": {"type": "object"}}}
            responses[str(status)] = answer
        if public:
            item["security"] = []
        else:
            for status, description in _ERRORS.items():
                responses[str(status)] = {"description": description, "content": _json(error_ref)}
            item["security"] = [{"bearer": []}]
        item["responses"] = responses
        paths.setdefault(op.url, {})[op.method.lower()] = item
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


def openapi_document(
    operations: Sequence[Operation], path_params: Mapping[str, PathParam]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations` (a fresh copy: callers may modify it).

    Built once per distinct table (operations compare by identity).

    Raises:
        LookupError: a path placeholder that neither the operation nor `path_params` describes.
        TypeError: a query model whose JSON schema needs definitions.
    """
    return copy.deepcopy(_document(tuple(operations), tuple(path_params.values())))
