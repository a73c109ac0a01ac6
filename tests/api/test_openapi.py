"""The served OpenAPI document: built from the same operation table as the router, generated
from the models, true to the limits the handlers enforce, and fuzzed by schemathesis against
the real app and Redis without a single 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import create_app
from bot.domain.clock import FixedClock
from bot.domain.config import NumberConfig
from bot.settings import Settings
from handlers.api import operations
from handlers.api.openapi import openapi_document
from handlers.api.operations import OPERATIONS, PATH_PARAMS
from tests.api.conftest import ADMIN, N1, Desk, put_number

# Bounded: a few examples per operation and mode (known ids, generated ids, negative), so the
# run grows with the API but stays a couple of minutes at most on a 2-core machine.
EXAMPLES_PER_OPERATION = 6


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, resource.canonical)
        for resource in app.router.resources()
        if resource.canonical.startswith("/api/v1")
        for route in resource
        if route.method != "HEAD"
    }


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


async def test_document_lists_every_api_route_and_nothing_else(
    client: TestClient[Any, Any],
) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert _served(client.app) == _documented(doc)
    assert len(OPERATIONS) == len(_documented(doc))


async def test_an_operation_left_out_of_the_table_is_neither_routed_nor_documented(
    settings: Settings,
    clock: FixedClock,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A path of its own (hours), and one method of a path that keeps the others (DELETE).
    dropped = {"getNumberHours", "deleteNumber"}
    kept = tuple(op for op in OPERATIONS if op.operation_id not in dropped)
    monkeypatch.setattr(operations, "OPERATIONS", kept)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await put_number(client, N1)

    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert _served(client.app) == _documented(doc)
    assert len(_documented(doc)) == len(OPERATIONS) - 2
    assert "/api/v1/numbers/{phone_number_id}/hours" not in doc["paths"]
    assert set(doc["paths"]["/api/v1/numbers/{phone_number_id}"]) == {"put", "get", "patch"}
    # The router lost them too: no such route for a caller who may do anything.
    assert (await client.get(f"/api/v1/numbers/{N1}/hours", headers=ADMIN)).status == 404
    assert (await client.delete(f"/api/v1/numbers/{N1}", headers=ADMIN)).status == 405
    assert (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).status == 200


def _bounded_query_parameters() -> list[tuple[str, str, str, dict[str, Any], dict[str, str]]]:
    """(method, path, name, schema, required) of every documented query parameter with an
    upper bound; `required` gives a valid value to the operation's required parameters."""
    doc = openapi_document(OPERATIONS, PATH_PARAMS)
    samples = {"q": "ana", "number": N1}
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            query = [p for p in op.get("parameters", ()) if p["in"] == "query"]
            required = {p["name"]: samples[p["name"]] for p in query if p["required"]}
            out += [
                (method.upper(), path, p["name"], p["schema"], required)
                for p in query
                if "maximum" in p["schema"] or "maxLength" in p["schema"]
            ]
    return out


async def test_documented_query_limits_are_the_enforced_ones(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    """A value at each documented upper bound of a query parameter is not refused for its
    size, and one past it is a 422 naming the parameter: the document states the limits the
    handlers apply."""
    concrete = {"{phone_number_id}": N1, "{agent_id}": "ana", "{wa_id}": "5511987654321"}
    checked = 0
    for method, pattern, name, schema, required in _bounded_query_parameters():
        path = pattern
        for placeholder, value in concrete.items():
            path = path.replace(placeholder, value)
        if "maximum" in schema:
            at, past = str(schema["maximum"]), str(schema["maximum"] + 1)
        else:
            at, past = "a" * schema["maxLength"], "a" * (schema["maxLength"] + 1)
        where = f"{method} {pattern} {name}"
        ok = await client.request(method, path, params={**required, name: at}, headers=ADMIN)
        if ok.status == 422:
            # At the bound only the value's meaning may be refused (a cursor, a date).
            error = (await ok.json())["error"]
            assert schema.get("type") == "string", where
            assert "at most" not in error["message"], where
        refused = await client.request(method, path, params={**required, name: past}, headers=ADMIN)
        assert refused.status == 422, where
        assert (await refused.json())["error"]["field"] == name, where
        checked += 1
    assert checked >= 15


async def test_a_limit_in_non_ascii_digits_is_a_422(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    # "²".isdigit() is true but int("²") raises: hand-made parsing answered 500 here.
    for path in (f"/api/v1/numbers/{N1}/tickets", f"/api/v1/numbers/{N1}/history"):
        resp = await client.get(path, params={"limit": "²"}, headers=ADMIN)
        assert resp.status == 422, path
        assert (await resp.json())["error"]["field"] == "limit"
    resp = await client.get("/api/v1/monitoring", params={"details": "²"}, headers=ADMIN)
    assert resp.status == 422


def test_document_is_generated_from_the_models() -> None:
    doc = openapi_document(OPERATIONS, PATH_PARAMS)
    schemas = doc["components"]["schemas"]
    assert schemas["NumberConfig"]["required"] == ["timezone", "service_hours"]
    assert set(schemas["NumberConfig"]["properties"]) == set(NumberConfig.model_fields)
    put = doc["paths"]["/api/v1/numbers/{phone_number_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NumberConfig"
    }
    assert put["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    # The merge patch: nothing required, every member may be null (which removes it).
    patch = schemas["NumberConfigPatch"]
    assert "required" not in patch
    assert {"type": "null"} in patch["properties"]["absence"]["anyOf"]
    assert "required" not in schemas["AbsencePatch"]
    # Arrays are replaced whole, so their items keep the full schema.
    weekly = schemas["ServiceHoursPatch"]["properties"]["weekly"]["anyOf"][0]
    assert weekly["additionalProperties"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/Interval"
    }


_CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _run_cases(
    strategy: Any,
    checks: list[Any],
    call: dict[str, Any],
    statuses: Counter[tuple[str, int]],
) -> None:
    """Run one hypothesis test over `strategy`, each case sent and checked by schemathesis."""

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(checks=checks, **call)
        statuses[(case.operation.definition.raw["operationId"], response.status_code)] += 1

    run()


def _fuzz(doc: dict[str, Any], base_url: str, statuses: Counter[tuple[str, int]]) -> list[str]:
    """Run schemathesis over every operation; the failures found, as text. `statuses` counts
    the answers per (operationId, status)."""
    schema = schemathesis.openapi.from_dict(doc)
    session = requests.Session()
    call = {"base_url": base_url, "session": session, "headers": ADMIN}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Deletions last, so that the other operations find the seeded number and agents.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    fixed = {"phone_number_id": N1, "agent_id": "ana"}
    for operation in operations:
        known = {p: v for p, v in fixed.items() if f"{{{p}}}" in operation.path}
        variants: list[tuple[GenerationMode, dict[str, Any] | None]] = [
            (GenerationMode.POSITIVE, known or None),
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        for mode, path_parameters in variants:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            # Negative cases are meant to be refused: only a server error is a failure there.
            negative = mode == GenerationMode.NEGATIVE
            try:
                _run_cases(strategy, [not_a_server_error] if negative else _CHECKS, call, statuses)
            except Unsatisfiable:
                # Nothing to break: an operation without parameters or body has no negative case.
                assert negative
            except Exception as exc:  # every failure is collected, then reported at once
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    session.close()
    return failures


@pytest.mark.timeout(300)
async def test_schemathesis_finds_no_server_error(client: TestClient[Any, Any], desk: Desk) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    base_url = str(client.make_url("")).rstrip("/")
    # schemathesis speaks blocking HTTP: it runs in a thread while this loop serves the app.
    statuses: Counter[tuple[str, int]] = Counter()
    failures = await asyncio.to_thread(_fuzz, doc, base_url, statuses)
    assert not failures, "\n\n".join(failures)
    # Not only refusals: the documented example got through, and so did generated patches.
    assert statuses[("putNumber", 200)] + statuses[("putNumber", 201)] >= 1
    assert statuses[("patchNumber", 200)] >= 1
    assert statuses[("putAgent", 200)] + statuses[("putAgent", 201)] >= 1
