"""The served OpenAPI document: complete, generated from the models, and fuzzed by schemathesis
against the real app and Redis without a single 500."""

from __future__ import annotations

import asyncio
from collections import Counter
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

from bot.domain.config import NumberConfig
from bot.openapi import OPERATIONS, openapi_document
from tests.api.conftest import ADMIN, N1, Desk

# Bounded: a few examples per operation and mode (known ids, generated ids, negative), so the
# run grows with the API but stays a couple of minutes at most on a 2-core machine.
EXAMPLES_PER_OPERATION = 6


def test_document_lists_every_api_route_and_nothing_else(client: TestClient[Any, Any]) -> None:
    app: web.Application = client.app
    served = {
        (route.method, resource.canonical)
        for resource in app.router.resources()
        if resource.canonical.startswith("/api/v1")
        for route in resource
        if route.method != "HEAD"
    }
    documented = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    assert served == documented
    assert len(OPERATIONS) == len(documented)


def test_document_is_generated_from_the_models() -> None:
    doc = openapi_document()
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
