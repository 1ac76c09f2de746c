"""The OpenAPI schema is valid and true: schemathesis with every check passes against the
running portal, every operation documents the errors the API really gives (in the one error
body), and the API refuses what the schema refuses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone


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


# --- schemathesis, every check ----------------------------------------------------------------
# What schemathesis may see when it sends data the schema allows. The API has rules no schema can
# say: a NIK's birth date and district, an income that is a contribution level, a cursor or sync
# token it issued itself, "exactly one of kpj or nik", a sponsor or partner that exists. Such a
# request is refused with 400 (or 404/409/422) and a code naming the rule; every other check
# (status codes and bodies as documented, what the schema refuses refused, 5xx, auth, methods)
# runs with schemathesis's own expectations.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429"]
"""
MAX_EXAMPLES = 10  # per operation in the fuzzing phase; the coverage phase adds its own cases


@pytest.fixture
def api_data(tx_refdata: Any, settings: Any) -> str:
    """An admin token, a sponsor, and a participant with a payment (so ids, ledgers and sync
    pages hold something). The request throttle is off: schemathesis sends ~1,300 requests."""
    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment
    from enrollment.api.clients import create_api_client
    from enrollment.models import ApiClient, Partner
    from enrollment.services import register_participant
    from tests.conftest import nik_for, registration_data

    settings.API_THROTTLE_RATE = None
    Partner.objects.create(code="GNL", name="GN Lingkaran", kind="sponsor")
    p = register_participant(**registration_data(nik=nik_for(serial=61)))
    due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=timezone.localdate())
    record_payment(
        participant=p,
        amount=due.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference="SCHEMA-1",
        paid_at=timezone.now(),
    )
    return create_api_client(name="schemathesis", scope=ApiClient.Scope.ADMIN).token


def test_api_passes_every_schemathesis_check(
    live_server: Any, api_data: str, tmp_path: Path
) -> None:
    """`st run --checks all` against the running portal: every documented operation, the
    coverage phase (edge and schema-violating values: `year=null`, an empty enum, a month out
    of range), fuzzing and stateful links; any failure fails the test with schemathesis's
    report (and a curl line to reproduce it)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    st = Path(sys.executable).with_name("st")
    schema_url = f"{live_server.url}/api/schema/?format=json"
    run = subprocess.run(
        [str(st), "--config-file", str(config), "--no-color", "run", schema_url,
         "--checks", "all", "--header", f"Authorization: Token {api_data}",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "19", "--generation-deterministic",
         "--workers", "1", "--continue-on-failure", "--request-timeout", "30"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-12_000:]
    # every documented operation was tested (a new endpoint cannot slip past)
    documented = sum(
        method in ("get", "put", "post", "patch", "delete")
        for item in Client().get("/api/schema/?format=json").json()["paths"].values()
        for method in item
    )
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-4000:]
    assert int(selected.group(2)) == documented >= 15
    assert int(selected.group(1)) == int(tested.group(1)) == documented, output[-4000:]


# --- what the schema promises about errors ----------------------------------------------------
def _schema() -> dict[str, Any]:
    return Client().get("/api/schema/?format=json").json()  # type: ignore[no-any-return]


def test_every_operation_documents_the_errors_every_view_can_give(refdata: Any) -> None:
    schema = _schema()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            codes = set(operation["responses"])
            expected = {"400", "401", "403", "406", "429", "503"}
            if "requestBody" in operation:
                expected |= {"413", "415"}
            assert expected <= codes, (method, path, sorted(codes))
            for status in expected:
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}
            assert "Retry-After" in operation["responses"]["429"]["headers"]
    bulk = schema["paths"]["/api/v1/participants/bulk/"]["post"]
    assert "422" in bulk["responses"]  # a reused Idempotency-Key (declared by the view)
    key = next(p for p in bulk["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] and key["schema"]["minLength"] == 1
    quotes = schema["paths"]["/api/v1/quotes/"]["get"]
    months = next(p for p in quotes["parameters"] if p["name"] == "months")
    assert (months["schema"]["minimum"], months["schema"]["maximum"]) == (1, 12)
    listing = schema["paths"]["/api/v1/participants/"]["get"]["parameters"]
    assert next(p for p in listing if p["name"] == "status")["allowEmptyValue"] is True
    assert "allowEmptyValue" not in next(p for p in listing if p["name"] == "page_size")


def _validate(body: Any, schema: dict[str, Any]) -> None:
    import jsonschema

    error = {**schema["components"]["schemas"]["Error"], "components": schema["components"]}
    jsonschema.validate(body, error)


def test_real_403_406_and_415_bodies_are_the_documented_error(
    make_caller: Any, admin_user: Any
) -> None:
    from tests.conftest import password_login

    schema = _schema()
    channel = make_caller("channel", payment_channel="bank")
    refused = channel.get("/api/v1/participants/")
    assert refused.status_code == 403
    _validate(refused.json(), schema)
    session = Client()
    assert password_login(session, admin_user)  # password only: the second factor is missing
    otp = session.get("/api/v1/reports/progress/")
    assert otp.status_code == 403 and otp.json()["code"] == "otp_required"
    _validate(otp.json(), schema)
    admin = make_caller("admin")
    html = admin.get("/api/v1/occupations/", Accept="text/html")
    assert html.status_code == 406
    _validate(html.json(), schema)
    text = admin.http.post(
        "/api/v1/payments/",
        "x",
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Token {admin.token}",
    )
    assert text.status_code == 415
    _validate(text.json(), schema)


# --- the progress API refuses what its schema refuses -----------------------------------------
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("year=null", "year_invalid"),
        ("year=1999", "year_invalid"),
        ("year=2026.0", "year_invalid"),
        ("year=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96", "year_invalid"),  # full-width 2026
        ("year=2026&year=null", "year_invalid"),
        ("as_of=2024-13-40", "as_of_invalid"),
        ("as_of=20240105", "as_of_invalid"),
        ("province=3%002", "province_invalid"),
        ("occupation=" + "x" * 33, "occupation_invalid"),
        ("partner=0", "partner_invalid"),
        ("partner=99999999999999999999", "partner_invalid"),
    ],
)
def test_progress_api_refuses_a_parameter_its_schema_refuses(
    make_caller: Any, query: str, code: str
) -> None:
    r = make_caller("admin").get(f"/api/v1/reports/progress/?{query}")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == code and r.json()["message"]


def test_progress_api_takes_empty_parameters_as_not_sent(make_caller: Any) -> None:
    admin = make_caller("admin")
    empty = admin.get("/api/v1/reports/progress/?year=&as_of=&province=&occupation=&partner=")
    assert empty.status_code == 200
    assert empty.json() == admin.get("/api/v1/reports/progress/").json()
    assert admin.get("/api/v1/reports/progress/?year=2100").status_code == 200  # clamped
