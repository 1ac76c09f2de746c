"""The optional error tracker (issue 22, "Metrics and errors"): with SENTRY_DSN set, a failing
request reaches the tracker — a real HTTP server standing in for Sentry receives the SDK's
envelopes — with its request id, and without the NIK, the phone number, the cookies or the
token anywhere in what is sent. Without SENTRY_DSN nothing is initialised."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _test_database_url

ROOT = Path(__file__).resolve().parent.parent.parent
NIK, PHONE = "3273011203900001", "081234567890"
TOKEN = "bpu_a7f53129_Cl0qSecretSecretSecret"

CHILD = f"""
import django, logging
django.setup()
from django.conf import settings
from django.test.utils import setup_test_environment
setup_test_environment()
settings.ROOT_URLCONF = "tests.bpjsportal.sentry_urls"
from django.test import Client
import sentry_sdk
c = Client(raise_request_exception=False)
c.cookies["sessionid"] = "very-secret-session"
r = c.get("/sentry-test/fail/?nik={NIK}", HTTP_X_REQUEST_ID="sentry-req-0001",
          HTTP_AUTHORIZATION="Token {TOKEN}")
print("STATUS", r.status_code)
logging.getLogger("contributions").error("payment refused for %s", "{PHONE}")
sentry_sdk.flush(timeout=10)
"""


class Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Collector.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    finally:
        server.shutdown()
        server.server_close()


def _events() -> list[dict[str, Any]]:
    events = []
    for envelope in Collector.received:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


@pytest.mark.django_db
def test_a_failing_request_reaches_the_tracker_without_personal_data(tracker: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**os.environ, "SENTRY_DSN": tracker, "DATABASE_URL": _test_database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "STATUS 500" in proc.stdout, proc.stderr[-3000:]
    events = _events()
    sent = b"\n".join(Collector.received).decode()
    # what was sent holds none of the secrets, in any form
    for secret in (NIK, PHONE, "very-secret-session", "Cl0qSecretSecretSecret"):
        assert secret not in sent
    errors = [e for e in events if e.get("exception")]
    assert errors, sent[:2000]
    value = errors[0]["exception"]["values"][-1]
    assert value["type"] == "ValueError"
    assert value["value"] == "registration failed for NIK 3273**********01, phone 0812******90"
    assert errors[0]["tags"]["request_id"] == "sentry-req-0001"
    assert "vars" not in json.dumps(errors[0]["exception"])  # no local variables
    logged = [e for e in events if e.get("logentry") or e.get("message")]
    assert any("0812******90" in json.dumps(e) for e in logged)


def test_without_a_dsn_nothing_is_initialised() -> None:
    import sentry_sdk

    assert not os.environ.get("SENTRY_DSN")
    assert not sentry_sdk.is_initialized()
