"""The OpenAPI schema is valid and true: schemathesis with every check passes against the
running portal, every operation documents the errors the API really gives (in the one error
body), and the API refuses what the schema refuses."""

from __future__ import annotations

import os
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


# --- the documentation every operation carries (docs/api.md "The schema") --------------------
METHODS = ("get", "put", "post", "patch", "delete")
ACTIONS = {"post": "create", "patch": "partial_update", "put": "update", "delete": "destroy"}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_spectacular_validates_the_schema_with_fail_on_warn(tmp_path: Path) -> None:
    """What CI runs: `manage.py spectacular --validate --fail-on-warn` (any warning of
    drf-spectacular - an unresolvable type, a colliding component name - fails it)."""
    out = tmp_path / "schema.yaml"
    run = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(out)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        env={**os.environ, "DEBUG": "1"}, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "operationId: participants_list" in out.read_text()


def _expected_operation_id(
    schema: dict[str, Any], path: str, method: str, operation: dict[str, Any]
) -> str:
    """The convention of enrollment/api/schema.py: the path's fixed segments after /api/v1/,
    then the action (a GET answering a list or a page of `results` is `list`)."""
    segments = [
        s.replace("-", "_") for s in path.removeprefix("/api/v1/").split("/") if s and "{" not in s
    ]
    if method == "get":
        body = operation["responses"]["200"]["content"]["application/json"]["schema"]
        if "$ref" in body:
            body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        listing = body.get("type") == "array" or (
            body.get("properties", {}).get("results", {}).get("type") == "array"
        )
        action = "list" if listing else "retrieve"
    else:
        action = ACTIONS[method]
    return "_".join([*segments, action])


def test_every_operation_has_a_summary_a_tag_and_a_conventional_id(refdata: Any) -> None:
    from enrollment.api.schema import OPERATION_ID_PATTERN, TAGS

    schema = _schema()
    declared = [t["name"] for t in schema["tags"]]
    assert declared == list(TAGS)  # settings' TAGS: every tag described, in this order
    operations = _operations(schema)
    assert len(operations) >= 20
    ids = [operation["operationId"] for _path, _method, operation in operations]
    assert len(ids) == len(set(ids)), sorted(ids)
    for path, method, operation in operations:
        where = (method, path)
        assert operation.get("summary", "").strip(), where
        assert operation.get("description", "").strip(), where
        assert operation.get("tags") and set(operation["tags"]) <= set(TAGS), where
        assert re.fullmatch(OPERATION_ID_PATTERN, operation["operationId"]), where
        assert operation["operationId"] == _expected_operation_id(
            schema, path, method, operation
        ), where
        # every documented response is typed (a schema), errors with the one error body
        for status, response in operation["responses"].items():
            body = response["content"]["application/json"]["schema"]
            assert body, (where, status)
            if status.startswith(("4", "5")):
                assert body == {"$ref": "#/components/schemas/Error"}, (where, status)
    progress = schema["paths"]["/api/v1/reports/progress/"]["get"]["responses"]["200"]
    assert progress["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Progress"
    }


def test_every_filter_of_a_list_endpoint_is_a_documented_parameter(refdata: Any) -> None:
    from bpjsportal.api_urls import urlpatterns

    schema = _schema()
    filtered = {
        "/api/v1/" + str(p.pattern): p.callback.view_class.filterset_class  # type: ignore[attr-defined]
        for p in urlpatterns
        if getattr(getattr(p.callback, "view_class", None), "filterset_class", None)
    }
    assert set(filtered) == {"/api/v1/participants/", "/api/v1/regions/"}
    for path, filterset in filtered.items():
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert set(filterset.base_filters) <= set(parameters), path
        assert {"cursor", "page_size"} <= set(parameters), path
        for name in filterset.base_filters:
            assert parameters[name]["in"] == "query" and parameters[name].get("description")
    participants = schema["paths"]["/api/v1/participants/"]["get"]["parameters"]
    names = {p["name"]: p for p in participants}
    assert {"province", "regency", "occupation", "partner", "agent", "kpj", "nik", "search",
            "status"} <= set(names)  # fmt: skip
    assert sorted(names["status"]["schema"]["enum"]) == ["active", "grace", "lapsed"]
    regions = {p["name"]: p for p in schema["paths"]["/api/v1/regions/"]["get"]["parameters"]}
    assert set(regions["level"]["schema"]["enum"]) == {"province", "regency", "district", "village"}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable` as JSON Schema (for jsonschema)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def test_every_example_matches_its_schema(refdata: Any) -> None:
    """An example is documentation a client copies: each request and response example is
    valid against the schema it illustrates (additional properties refused, so a misspelt
    field fails)."""
    import jsonschema

    schema = _schema()
    components = _json_schema(schema["components"])
    for name, component in components["schemas"].items():
        if component.get("type") == "object" and name != "Error":
            component.setdefault("additionalProperties", False)
    seen = 0
    for path, method, operation in _operations(schema):
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [(s, r.get("content", {})) for s, r in operation["responses"].items()]
        for where, content in bodies:
            media = content.get("application/json", {})
            for name, example in media.get("examples", {}).items():
                body = {**_json_schema(media["schema"]), "components": components}
                try:
                    jsonschema.validate(
                        example["value"], body, format_checker=jsonschema.FormatChecker()
                    )
                except jsonschema.ValidationError as exc:
                    raise AssertionError((method, path, where, name, exc.message)) from exc
                seen += 1
    assert seen >= 30


def test_participant_filters_filter_as_before(admin_api: Any) -> None:
    """The FilterSet (enrollment/api/filters.py) keeps the hand-written filters' behaviour:
    values as sent (not stripped), the last of a repeated parameter, empty = not sent."""
    from tests.api.conftest import next_nik, reg_body
    from tests.conftest import nik_for

    url = "/api/v1/participants/"
    bandung = admin_api.post(url, reg_body(nik=next_nik())).json()
    surabaya = admin_api.post(
        url, reg_body(nik=nik_for(serial=9061, prefix="357801"), village="35.78.01.1001")
    ).json()
    assert "id" in bandung and "id" in surabaya, (bandung, surabaya)

    def ids(query: str) -> set[int]:
        r = admin_api.get(f"{url}?{query}")
        assert r.status_code == 200, r.content
        return {row["id"] for row in r.json()["results"]}

    both = {bandung["id"], surabaya["id"]}
    assert ids("") == ids("province=&status=&search=") == both
    assert ids("province=32") == ids("regency=32.73") == {bandung["id"]}
    assert ids("province=32&province=35") == {surabaya["id"]}  # the last value
    assert ids("province=%2032") == set()  # not stripped
    assert ids(f"kpj={surabaya['kpj_number']}") == {surabaya["id"]}
    assert ids(f"nik={surabaya['nik']}") == ids(f"search={surabaya['nik']}") == {surabaya["id"]}
    assert ids("occupation=petani") == both and ids("partner=NONE") == set()
    assert ids(f"status={bandung['status']}") >= {bandung["id"]}
    other = {"active", "grace", "lapsed"} - {bandung["status"], surabaya["status"]}
    assert all(ids(f"status={s}") == set() for s in other)
    refused = admin_api.get(f"{url}?status=sleeping&province=32")
    assert refused.status_code == 400 and refused.json()["code"] == "status_invalid"
    regions = admin_api.get("/api/v1/regions/?level=regency&parent=%2032")
    assert regions.status_code == 200 and regions.json()["results"] == []


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
