"""Health endpoints (issue 22, "Health"): liveness never touches a dependency; readiness answers
503 naming the failing check when PostgreSQL is down, the schema is behind the code or Redis is
down; the workers endpoint needs a real Celery worker consuming the portal's queue.

The outages are real: a child process of the portal is pointed at a port where nothing listens,
or at an empty database, and asked through Django's test client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from tests.conftest import _test_database_url
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent

ASK = """
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
out = {}
for path in ("/health/live/", "/health/ready/"):
    r = Client().get(path)
    out[path] = {"status": r.status_code, "body": json.loads(r.content)}
print("HEALTH=" + json.dumps(out))
"""


def _ask_child(**env: str) -> dict[str, Any]:
    """/health/live/ and /health/ready/ as answered by a fresh process of the portal."""
    proc = subprocess.run(
        [sys.executable, "-c", ASK],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bpjsportal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEALTH=")]
    assert line, proc.stderr[-3000:]
    answers: dict[str, Any] = json.loads(line[0].removeprefix("HEALTH="))
    return answers


def _get(path: str) -> Any:
    """GET `path` from a thread of its own, as a WSGI server's worker thread would.

    The readiness and workers views are async (django-health-check runs its checks concurrently);
    from a synchronous caller Django runs them with async_to_sync, which refuses a thread where an
    asyncio loop is running. Playwright's sync API keeps one running on the main thread while the
    session-wide browser of the e2e tests is open, so asking from the main thread would make these
    tests depend on whether a browser test ran first."""

    def ask() -> Any:
        try:
            return Client().get(path)
        finally:
            connections.close_all()  # the thread's own connections, before the test's teardown

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ask).result()


def _failing(body: dict[str, Any]) -> dict[str, str]:
    return {name: c["error"] for name, c in body["checks"].items() if not c["ok"]}


def test_live_touches_no_dependency() -> None:
    # no django_db mark: pytest-django fails the test if the view opens a database connection
    response = Client().get("/health/live/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_live_refuses_other_methods() -> None:
    assert Client().post("/health/live/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_ready_when_everything_answers() -> None:
    response = _get("/health/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {"Database:default", "MigrationsApplied:default", "Redis"} <= set(body["checks"])
    assert all(c["ok"] for c in body["checks"].values())
    assert "no-cache" in response["Cache-Control"]


def test_ready_is_503_when_postgres_is_down() -> None:
    closed = free_port()  # nothing listens there
    answers = _ask_child(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/bpjsportal")
    assert answers["/health/live/"] == {"status": 200, "body": {"status": "ok"}}
    ready = answers["/health/ready/"]
    assert ready["status"] == 503
    assert ready["body"]["status"] == "unavailable"
    failing = _failing(ready["body"])
    assert set(failing) == {"Database:default", "MigrationsApplied:default"}
    assert failing["MigrationsApplied:default"].endswith("database unavailable")
    # the answer names no host, port or user
    assert str(closed) not in json.dumps(ready["body"])


@pytest.fixture
def empty_database() -> Any:
    name = f"health_empty_{os.getpid()}"
    admin = psycopg.connect(_test_database_url().rsplit("/", 1)[0] + "/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _test_database_url().rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_ready_is_503_before_migrate(empty_database: str) -> None:
    ready = _ask_child(DATABASE_URL=empty_database)["/health/ready/"]
    assert ready["status"] == 503
    failing = _failing(ready["body"])
    assert list(failing) == ["MigrationsApplied:default"]
    assert failing["MigrationsApplied:default"].endswith("migration(s) not applied")


@pytest.mark.django_db
def test_ready_is_503_when_redis_is_down() -> None:
    closed = free_port()
    answers = _ask_child(
        DATABASE_URL=_test_database_url(),
        REDIS_URL=f"redis://127.0.0.1:{closed}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed}/0",
    )
    assert answers["/health/live/"]["status"] == 200
    ready = answers["/health/ready/"]
    assert ready["status"] == 503
    assert list(_failing(ready["body"])) == ["Redis"]


def test_workers_is_503_without_a_worker_on_the_portal_queue() -> None:
    # the session's queue is its own (tests/conftest.py): no worker consumes it here
    response = _get("/health/workers/")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_workers_ok_with_a_real_worker(celery_worker: Any) -> None:
    assert os.environ["CELERY_QUEUE"] == settings.CELERY_TASK_DEFAULT_QUEUE
    response = _get("/health/workers/")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["Ping"]["ok"] is True
