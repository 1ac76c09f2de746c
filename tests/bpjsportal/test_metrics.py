"""Prometheus metrics (bpjsportal/core/metrics.py; docs/operations.md "Metrics"): the endpoint
and its token, the request counter by route, payments applied and held in suspense counted
after the commit, the Celery queue length read from the real Redis, and task outcomes counted
in a real Celery worker (prefork, multiprocess mode) and read from that worker's own /metrics."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.bpjsportal.production import production_env
from tests.conftest import login_as, start_worker
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-test-token-" + "x" * 24


def scrape(client: Client | None = None, token: str | None = TOKEN) -> str:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (0 when absent: a counter not yet used)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
def token_on(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


# --- the endpoint ------------------------------------------------------------------------------
def test_without_a_token_setting_the_endpoint_is_off(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    for header in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
    ):
        assert Client().get("/metrics", **header).status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_a_wrong_or_missing_token_is_refused_without_detail(
    token_on: str, header: str | None
) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response.content == b""
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "Set-Cookie" not in response  # no session for a scraper


def test_only_get_and_head(token_on: str) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_on}"}
    assert Client().head("/metrics", **headers).status_code == 200
    # a POST without a CSRF token: the endpoint is not a form, it refuses any write
    assert Client(enforce_csrf_checks=True).post("/metrics", **headers).status_code in (403, 405)


@pytest.mark.django_db
def test_a_page_request_is_counted_by_route_name_not_by_path(
    token_on: str, register: Any, admin_user: Any
) -> None:
    participant = register()
    client = login_as(Client(), admin_user)
    before = scrape()
    labels = {"method": "GET", "route": "enrollment:participant", "status": "2xx"}
    path = f"/participants/{participant.pk}/"
    assert client.get(path).status_code == 200
    after = scrape()
    assert value(after, "bpu_http_requests_total", **labels) == (
        value(before, "bpu_http_requests_total", **labels) + 1
    )
    hist = {"method": "GET", "route": "enrollment:participant"}
    assert value(after, "bpu_http_request_duration_seconds_count", **hist) == (
        value(before, "bpu_http_request_duration_seconds_count", **hist) + 1
    )
    assert path not in after and f"/{participant.pk}/" not in after  # no raw path, no id
    # the page's queries were tallied on the default connection
    assert value(after, "bpu_db_queries_total", alias="default") > value(
        before, "bpu_db_queries_total", alias="default"
    )


def test_an_unknown_path_is_one_series_whatever_the_path(token_on: str) -> None:
    labels = {"method": "GET", "route": "unmatched", "status": "4xx"}
    before = value(scrape(), "bpu_http_requests_total", **labels)
    odd = f"/no-such-page-{uuid.uuid4().hex}/"
    assert Client().get(odd).status_code == 404
    assert Client().generic("BREW", "/also-missing/").status_code == 404
    after = scrape()
    assert value(after, "bpu_http_requests_total", **labels) == before + 1
    other = {"method": "other", "route": "unmatched", "status": "4xx"}
    assert value(after, "bpu_http_requests_total", **other) >= 1
    assert odd not in after and "BREW" not in after


def test_production_settings_exempt_the_endpoint_from_https_and_want_a_long_token() -> None:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_REDIRECT_EXEMPT, s.MIDDLEWARE, s.METRICS_TOKEN]))"
    )

    def run(token: str) -> subprocess.CompletedProcess[str]:
        env = production_env(METRICS_TOKEN=token, DJANGO_SETTINGS_MODULE="bpjsportal.settings")
        return subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )

    done = run(TOKEN)
    assert done.returncode == 0, done.stderr
    exempt, middleware, token = json.loads(done.stdout.strip().splitlines()[-1])
    assert r"^metrics$" in exempt and r"^health/" in exempt and token == TOKEN
    request_id = middleware.index("bpjsportal.core.request_id.RequestIdMiddleware")
    assert middleware[request_id + 1] == "bpjsportal.core.metrics.MetricsMiddleware"
    short = run("too-short")
    assert short.returncode != 0 and "METRICS_TOKEN must be at least 32" in short.stderr


# --- payments, counted once committed ------------------------------------------------------------
def _pay(participant: Any, reference: str) -> Any:
    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment

    cov = Coverage.objects.get(pk=participant.pk)
    due = quote_payment(participant, cov, months=1, as_of=timezone.localdate())
    payment, created = record_payment(
        participant=participant,
        amount=due.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference=reference,
        paid_at=timezone.now(),
    )
    assert created
    return payment


@pytest.mark.django_db
def test_a_payment_is_counted_after_its_commit_and_a_rolled_back_one_never(
    token_on: str, register: Any, django_capture_on_commit_callbacks: Any
) -> None:
    participant = register()
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        payment = _pay(participant, "METRICS-1")
        # not yet committed: not yet counted
        assert value(scrape(), "bpu_payments_applied_total", channel="bank") == value(
            before, "bpu_payments_applied_total", channel="bank"
        )
    after = scrape()
    assert value(after, "bpu_payments_applied_total", channel="bank") == (
        value(before, "bpu_payments_applied_total", channel="bank") + 1
    )
    assert value(after, "bpu_payments_applied_rupiah_total", channel="bank") == (
        value(before, "bpu_payments_applied_rupiah_total", channel="bank") + payment.amount
    )

    other = register(nik=_another_nik(), phone="081234567891")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _pay(other, "METRICS-2")
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert value(scrape(), "bpu_payments_applied_total", channel="bank") == value(
        after, "bpu_payments_applied_total", channel="bank"
    )


def _another_nik() -> str:
    from tests.conftest import nik_for

    return nik_for(serial=7)


@pytest.mark.django_db
def test_a_notification_held_in_suspense_is_counted_by_reason(
    token_on: str, register: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from contributions.bills import notify_payment, open_bill
    from enrollment.api.clients import create_api_client

    bank = create_api_client(name="bank", scope="channel", payment_channel="bank").client
    bill, _ = open_bill(participant=register(), months=1)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        done = notify_payment(
            client=bank,
            code=bill.code,
            reference="BANK-METRICS-1",
            amount=bill.amount + 1000,  # not the bill's amount: held in suspense
            paid_at=timezone.now(),
            body_sha256=hashlib.sha256(b"BANK-METRICS-1").hexdigest(),
        )
    assert not done.applied
    after = scrape()
    reason = {"reason": "amount_mismatch"}
    assert value(after, "bpu_payments_suspense_total", **reason) == (
        value(before, "bpu_payments_suspense_total", **reason) + 1
    )
    assert value(after, "bpu_payments_suspense_rupiah_total", **reason) == (
        value(before, "bpu_payments_suspense_rupiah_total", **reason) + bill.amount + 1000
    )
    # ... and nothing counted as applied
    assert value(after, "bpu_payments_applied_total", channel="bank") == value(
        before, "bpu_payments_applied_total", channel="bank"
    )


# --- the Celery queues, read from the real Redis at scrape time ---------------------------------
def test_the_queue_length_is_read_from_the_broker_at_scrape_time(
    token_on: str, settings: Any
) -> None:
    queue = f"test-metrics-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ROUTES = {"metrics.test": {"queue": queue}}  # a routed queue
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    keys = [queue, f"{queue}\x06\x163"]  # kombu's list of priority 0, and of priority 3
    try:
        assert value(scrape(), "bpu_celery_queue_length", queue=queue) == 0
        client.lpush(keys[0], "a", "b", "c")
        client.lpush(keys[1], "d")
        text = scrape()
        assert value(text, "bpu_celery_queue_length", queue=queue) == 4
        assert value(text, "bpu_celery_broker_up") == 1
        default = str(django_settings.CELERY_TASK_DEFAULT_QUEUE)
        assert f'bpu_celery_queue_length{{queue="{default}"}}' in text
        client.rpop(keys[0])
        assert value(scrape(), "bpu_celery_queue_length", queue=queue) == 3
    finally:
        client.delete(*keys)
        client.close()


def test_a_broker_that_does_not_answer_is_reported_and_the_scrape_still_answers(
    token_on: str, settings: Any
) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1
    text = scrape()
    assert value(text, "bpu_celery_broker_up") == 0
    assert "bpu_celery_queue_length" not in text.replace("# HELP", "").replace("# TYPE", "")


# --- task outcomes in a real worker (prefork, multiprocess mode, its own /metrics) --------------
def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 - a loopback http URL of the test
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_for(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _get(url, None)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@pytest.mark.celery
def test_task_outcomes_are_counted_in_the_worker_and_served_by_its_own_endpoint(
    tx_refdata: Any,
) -> None:
    from bpjsportal.celery import app

    name = "contributions.refresh_coverage_statuses"
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with tempfile.TemporaryDirectory(prefix="bpu-metrics-") as multiproc_dir:
        proc, _node = start_worker(
            pool="prefork",
            PROMETHEUS_MULTIPROC_DIR=multiproc_dir,
            METRICS_WORKER_LISTEN=f"127.0.0.1:{port}",
            METRICS_TOKEN=TOKEN,
        )
        try:
            _wait_for(url)
            assert _get(url, None)[0] == 401
            assert _get(url, "wrong")[0] == 401
            queue = os.environ["CELERY_QUEUE"]
            ok = app.send_task(
                name, kwargs={"as_of": timezone.localdate().isoformat()}, queue=queue
            )
            bad = app.send_task(name, kwargs={"as_of": "not-a-date"}, queue=queue)
            assert isinstance(ok.get(timeout=60), dict)
            with pytest.raises(ValueError):
                bad.get(timeout=60)
            status, text = _get(url, TOKEN)
            assert status == 200
            assert value(text, "bpu_celery_tasks_total", task=name, outcome="succeeded") == 1
            assert value(text, "bpu_celery_tasks_total", task=name, outcome="failed") == 1
            assert value(text, "bpu_celery_task_duration_seconds_count", task=name) == 2
            # counted by the pool child, in the shared directory, not in the main process
            assert any(Path(multiproc_dir).glob("counter_*.db"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
