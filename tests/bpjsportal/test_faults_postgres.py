"""PostgreSQL restarted mid-request (issue #8, "Faults"). A dedicated cluster started by the test
on a port of its own serves a real gunicorn process of the portal. A payment request is caught
half-way through its transaction (payment and ledger rows written, blocked on the receipt's
unique key by a transaction of the test) when PostgreSQL restarts: the client gets a clear 503 in
the API's JSON error format, nothing of the payment is left, and the same process answers the
next request on a fresh connection. Pages get a 503 page while the database is down."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests import clock
from tests.servers import PG_BIN, DedicatedPostgres, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "pg-fault-pass-2024"
DB = "faults_pg"

pytestmark = [
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="no PostgreSQL binaries"),
    pytest.mark.django_db,  # the test database is the source of the schema (see below)
]

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from contributions.models import Coverage
from contributions.quotes import quote_payment
from enrollment.api.clients import create_api_client
from enrollment.models import Branch, StaffProfile
from enrollment.services import register_participant
from tests.conftest import registration_data
branch = Branch.objects.create(code="BDG", name="Bandung", province_id="32")
user = get_user_model().objects.create_user(username="agent_pg", password="{PASSWORD}")
staff = StaffProfile.objects.create(user=user, role="agent", branch=branch, agent_code="A-PG")
p = register_participant(**registration_data(registered_by=staff, consent_reminders=True))
from django.utils import timezone
due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=timezone.localdate())
token = create_api_client(name="bank", scope="channel", payment_channel="bank").token
print("SETUP=" + json.dumps({{"pk": p.pk, "kpj": p.kpj_number, "amount": due.amount,
      "first_month": due.first_month.isoformat(), "token": token}}))
"""


# Reference rows the one registration and payment need (the whole region table would take
# longer to copy than the test may last).
REFERENCE = {
    "enrollment_region": "code IN ('32', '32.73', '32.73.05', '32.73.05.1001')",
    "enrollment_nikprefix": "code = '327305'",
    "enrollment_occupation": "TRUE",
    "contributions_rateschedule": "TRUE",
    "contributions_incomelevel": "TRUE",
    "contributions_ratediscount": "TRUE",
    "contributions_reminderrule": "TRUE",
}


def _clone_schema_and_reference_data(source: dict[str, Any], target_url: str) -> None:
    """The test database's schema (all migrations: tables, constraints, triggers, sequences)
    and the reference rows above, copied into the dedicated cluster -- seconds, not a full
    `migrate` + `load_reference_data`."""
    port = str(source.get("PORT") or 5432)
    host = source.get("HOST") or "127.0.0.1"
    dump = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "-h", host, "-p", port, "-U", source["USER"] or "postgres", source["NAME"]],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    subprocess.run(
        [str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", target_url],
        input=dump, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    src = psycopg.connect(
        host=host, port=port, user=source["USER"] or "postgres", dbname=source["NAME"]
    )
    with src, psycopg.connect(target_url) as dst:
        for table, where in REFERENCE.items():
            select = f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT"  # noqa: S608
            with (
                src.cursor().copy(select) as out,
                dst.cursor().copy(f"COPY {table} FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)


@pytest.fixture(scope="module")
def portal(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """A dedicated PostgreSQL (schema, reference data, one agent, one participant) and a
    gunicorn process of the portal on it, with persistent connections (DB_CONN_MAX_AGE)."""
    from django.core.management import call_command
    from django.db import connection

    from enrollment.models import Region

    with django_db_blocker.unblock():  # a transactional test may have flushed them
        if not Region.objects.filter(code="32.73.05.1001").exists():
            call_command("load_reference_data", verbosity=0)
        source = dict(connection.settings_dict)
    pg = DedicatedPostgres()
    server: subprocess.Popen[bytes] | None = None
    try:
        pg.init()
        pg.start()
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        _clone_schema_and_reference_data(source, pg.url(DB))
        env = {
            **os.environ,
            "DATABASE_URL": pg.url(DB),
            "DB_CONN_MAX_AGE": "600",
            # DEBUG on only because production static files need `collectstatic` first; the
            # 503 handling is the same either way (a view's exception never reaches the debug page)
            "DEBUG": "1",
            "ALLOWED_HOSTS": "127.0.0.1",
            "NOTIFY_ON_PAYMENT": "1",
            **clock.subprocess_env(),  # the set-up and gunicorn run on the test's clock
        }
        setup = subprocess.run(
            [sys.executable, "-m", "tests.clock", "manage.py", "shell", "-c", SETUP],
            cwd=ROOT, env=env, timeout=60, capture_output=True, text=True,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stderr[-3000:]
        facts = json.loads(setup.stdout.split("SETUP=", 1)[1])
        port = free_port()
        log = open(pg.dir / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.clock", "-m", "gunicorn", "bpjsportal.wsgi",
             "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "2", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(port, up=True, timeout=30)
        yield {
            **facts,
            "pg": pg,
            "base": f"http://127.0.0.1:{port}",
            "log": pg.dir / "gunicorn.log",
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        pg.destroy()


def _payment(facts: dict[str, Any], reference: str) -> dict[str, Any]:
    return {
        "kpj_number": facts["kpj"],
        "amount": facts["amount"],
        "months": 1,
        "reference": reference,
        "paid_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "payer": "participant",
    }


def _rows(facts: dict[str, Any], sql: str) -> int:
    with psycopg.connect(facts["pg"].url(DB)) as conn:
        row = conn.execute(sql, {"pk": facts["pk"]}).fetchone()
        return int(row[0]) if row else 0


def test_postgres_restart_mid_payment_is_a_clean_503_and_the_next_request_reconnects(
    portal: dict[str, Any],
) -> None:
    # this test's part of the module's gunicorn log (the other test, in either order, logs the
    # session middleware's traceback when PostgreSQL is down)
    log_from = portal["log"].stat().st_size
    api = httpx.Client(
        base_url=portal["base"],
        headers={"Authorization": f"Token {portal['token']}", "Accept-Language": "en"},
        timeout=30,
    )
    assert api.get("/api/v1/occupations/").status_code == 200  # a persistent connection is open

    # The test's own transaction takes the receipt's unique key first, so the request stops
    # after writing its payment, ledger entry and coverage -- mid-transaction.
    blocker = psycopg.connect(portal["pg"].url(DB))
    blocker.execute(
        "INSERT INTO contributions_reminder (participant_id, kind, period, planned_for, "
        "send_after, state, channel, recipient, attempts, quiet_deferrals, last_error, "
        "created_at, updated_at) VALUES (%(pk)s, 'payment_receipt', %(month)s, now(), now(), "
        "'queued', 'sms', '', 0, 0, '', now(), now())",
        {"pk": portal["pk"], "month": portal["first_month"]},
    )
    answer: dict[str, httpx.Response] = {}
    request = threading.Thread(
        target=lambda: answer.setdefault(
            "r", api.post("/api/v1/payments/", json=_payment(portal, "TRX-PG-1"))
        )
    )
    request.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the request waits on the lock inside its transaction
        waiting = _rows(
            portal,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%%INSERT INTO \"contributions_reminder\"%%'",
        )
        if waiting:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the payment request never reached the receipt insert")
    started = time.monotonic()
    portal["pg"].restart()
    request.join(timeout=30)
    response = answer["r"]
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "service_unavailable" and body["retry_after"] == 5
    assert "nothing was saved" in body["message"]
    assert response.headers["Retry-After"] == "5"
    assert time.monotonic() - started < 30
    with pytest.raises(psycopg.OperationalError):
        blocker.execute("SELECT 1")
    blocker.close()
    # no half-write: neither the payment nor its ledger entry nor the coverage change survived
    assert _rows(portal, "SELECT count(*) FROM contributions_payment") == 0
    assert _rows(portal, "SELECT count(*) FROM contributions_ledgerentry") == 0
    assert (
        _rows(portal, "SELECT balance FROM contributions_coverage WHERE participant_id=%(pk)s") == 0
    )

    # the same gunicorn process, same persistent connection slot: reconnects and posts it
    again = api.post("/api/v1/payments/", json=_payment(portal, "TRX-PG-1"))
    assert again.status_code == 201, again.text
    assert _rows(portal, "SELECT count(*) FROM contributions_payment") == 1
    assert _rows(portal, "SELECT count(*) FROM contributions_ledgerentry") == 1
    with open(portal["log"], "rb") as log:
        log.seek(log_from)
        assert b"Traceback" not in log.read()


def test_pages_say_503_while_postgres_is_down_and_work_after_it_is_back(
    portal: dict[str, Any],
) -> None:
    web = httpx.Client(base_url=portal["base"], headers={"Accept-Language": "en"}, timeout=30)
    login = web.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert token is not None
    done = web.post(
        "/login/",
        data={"username": "agent_pg", "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
    )
    assert done.status_code == 302
    assert web.get("/").status_code == 200

    portal["pg"].stop()
    try:
        down = web.get("/")
        assert down.status_code == 503, portal["log"].read_text(errors="replace")[-20000:]
        assert "Service temporarily unavailable" in down.text
        assert "nothing was saved" in down.text and "Traceback" not in down.text
        api = web.get("/api/v1/regions/", headers={"Authorization": f"Token {portal['token']}"})
        assert api.status_code == 503 and api.json()["code"] == "service_unavailable"
    finally:
        portal["pg"].start()
    wait_port(portal["pg"].port, up=True)
    assert web.get("/").status_code == 200  # the session survived; a fresh connection


def test_a_database_error_outside_a_view_is_a_503_not_a_500() -> None:
    """handler500: a middleware that loads the session when PostgreSQL is gone (no view ran)."""
    from django.db import InterfaceError, OperationalError
    from django.test import RequestFactory

    from bpjsportal.core.errors import server_error

    for error in (OperationalError("server closed the connection"), InterfaceError("closed")):
        for path in ("/participants/", "/api/v1/payments/"):
            try:
                raise error
            except type(error):
                response = server_error(RequestFactory().get(path))
            assert response.status_code == 503 and response["Retry-After"] == "5"
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(RequestFactory().get("/")).status_code == 500
