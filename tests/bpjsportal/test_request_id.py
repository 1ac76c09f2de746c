"""Request ids and structured logs (issue 22, "Logs"): every response says its request id, every
log line of the request carries it (and who made it), a Celery task queued by the request —
directly or through the outbox — logs under the same id in a real worker, and production's JSON
lines keep the personal-data mask."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.test import Client

from bpjsportal.core import request_id
from bpjsportal.core.logging import JsonFormatter, MaskPersonalDataFilter
from contributions.messaging import outbox

ROOT = Path(__file__).resolve().parent.parent.parent
WORKER_LOG = ROOT / "var" / "test-celery-worker.log"


def test_a_response_carries_a_new_request_id() -> None:
    first = Client().get("/health/live/")
    second = Client().get("/health/live/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("lb-7f3a9c21-0001", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("short", False),  # under 8 characters
        ("x" * 129, False),
        ("abc defgh ijk", False),  # spaces could forge log fields
        ("abcdefgh]\nERROR forged", False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_it_looks_like_one(sent: str, kept: bool) -> None:
    response = Client().get("/health/live/", HTTP_X_REQUEST_ID=sent)
    assert (response["X-Request-ID"] == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", response["X-Request-ID"])


@pytest.fixture
def console() -> Any:
    """What the configured console handler (settings.LOGGING: its filters and format) writes."""
    handler = logging.getLogger("django").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_a_log_line_of_the_request_carries_its_id(console: io.StringIO) -> None:
    rid = f"test-{uuid.uuid4().hex}"
    response = Client().get("/no-such-page-here/", HTTP_X_REQUEST_ID=rid)
    assert response.status_code == 404
    assert response["X-Request-ID"] == rid
    lines = [ln for ln in console.getvalue().splitlines() if "Not Found: /no-such-page-here/" in ln]
    assert lines, console.getvalue()[-2000:]
    assert f"WARNING django.request [{rid} -] Not Found" in lines[-1]  # anonymous: no principal
    assert request_id.current() is None  # nothing left bound after the request


def _json_line(message: str, *args: Any, rid: str | None) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPersonalDataFilter())
    handler.addFilter(request_id.RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.json.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with request_id.bound(rid):
            try:
                raise ValueError("NIK 3273011203900001 refused")
            except ValueError:
                logger.exception(message, *args)
    finally:
        logger.removeHandler(handler)
    out: dict[str, Any] = json.loads(stream.getvalue())
    return out


def test_production_log_lines_are_json_with_the_mask_kept() -> None:
    nik, phone = "3273011203900001", "081234567890"
    line = _json_line("payment for %s from %s", nik, phone, rid="r-12345678")
    assert set(line) == {
        "time",
        "level",
        "logger",
        "request_id",
        "principal",
        "message",
        "exc_info",
    }
    assert line["level"] == "ERROR"
    assert line["request_id"] == "r-12345678"
    assert line["principal"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "3273011203900001" not in json.dumps(line)
    assert "081234567890" not in line["message"]
    assert line["message"].startswith("payment for 3273**********01 from ")
    assert "ValueError: NIK 3273**********01 refused" in line["exc_info"]
    assert _json_line("outside a request", rid=None)["request_id"] == "-"


def _worker_lines_with(rid: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = WORKER_LOG.read_text(errors="replace") if WORKER_LOG.exists() else ""
        lines = [ln for ln in text.splitlines() if rid in ln]
        if any("succeeded" in ln for ln in lines):
            return lines
        time.sleep(0.3)
    return []


def test_a_task_queued_in_a_request_logs_under_its_id(celery_worker: Any) -> None:
    rid = f"direct-{uuid.uuid4().hex}"
    with request_id.bound(rid):
        current_app.send_task("contributions.relay_outbox")
    lines = _worker_lines_with(rid)
    assert lines, "the worker never logged the task under the request's id"
    assert any("contributions.relay_outbox" in ln and "succeeded" in ln for ln in lines)


def test_a_task_queued_through_the_outbox_keeps_the_id(celery_worker: Any) -> None:
    rid = f"outbox-{uuid.uuid4().hex}"
    with request_id.bound(rid):
        message = outbox.enqueue("contributions.refresh_coverage_statuses")
    assert message.kwargs == {request_id.OUTBOX_KEY: rid}
    outbox.relay()  # outside the request, as beat runs it
    lines = _worker_lines_with(rid, timeout=60)
    assert any("contributions.refresh_coverage_statuses" in ln for ln in lines), lines


@pytest.mark.parametrize(
    ("context", "principal"),
    [
        ({"username": "agent_bdg"}, "agent_bdg"),
        ({"username": None, "api_client_name": "bank-x"}, "api:bank-x"),
        ({"task": "contributions.relay_outbox"}, "task:contributions.relay_outbox"),
        ({}, "-"),
    ],
)
def test_the_principal_is_who_the_audit_context_names(
    context: dict[str, Any], principal: str
) -> None:
    import pghistory

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with pghistory.context(**context):
        request_id.RequestContextFilter().filter(record)
    assert record.principal == principal  # type: ignore[attr-defined]
