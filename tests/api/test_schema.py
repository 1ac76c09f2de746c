"""The OpenAPI schema is valid, and schemathesis finds no 500s or schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance


def test_schema_is_valid_openapi(refdata: Any) -> None:
    from drf_spectacular.validation import validate_schema

    r = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    import json

    schema = json.loads(r.content)
    validate_schema(schema)
    paths = set(schema["paths"])
    assert {
        "/api/v1/regions/",
        "/api/v1/occupations/",
        "/api/v1/quotes/",
        "/api/v1/participants/",
        "/api/v1/participants/{id}/",
        "/api/v1/participants/{id}/ledger/",
        "/api/v1/participants/bulk/",
        "/api/v1/payments/",
        "/api/v1/payments/batches/",
        "/api/v1/sync/participants/",
        "/api/v1/sync/payments/",
    } <= paths


def test_docs_page(refdata: Any) -> None:
    assert Client().get("/api/docs/").status_code == 200


@pytest.fixture
def api_schema(refdata: Any, settings: Any) -> Iterator[Any]:
    """In-process WSGI calls inside the test's transaction (as Django's test client does: the
    handler must not close the connection at the end of each request)."""
    settings.API_THROTTLE_RATE = None
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(make_caller: Any, partners: Any) -> str:
    return str(make_caller("admin").token)


def test_api_against_its_schema(api_schema: Any, token: str) -> None:
    """Every operation, a bounded number of generated cases each (about 15 s in all)."""
    headers = {"Authorization": f"Token {token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # (no test Client call here: it would reconnect close_old_connections, see api_schema)
    methods = {"get", "post", "put", "patch", "delete"}
    expected = {
        (method.upper(), path)
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method in methods
    }
    # every documented operation is fuzzed (a new endpoint cannot slip past), none twice
    assert sorted((op.method.upper(), op.path) for op in operations) == sorted(expected)
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            # Domain rules reject much schema-valid data (an income that is not a level, a NIK
            # with an impossible date), so "positive data accepted" is not checked; server
            # errors, undocumented status codes and response-schema violations are.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()


MAX_EXAMPLES = 40
