"""Shared fixtures: real PostgreSQL (test database), real Redis, a real Celery worker, Chromium."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import time_machine

from tests import clock

# A queue of our own, so a `make run` worker on the same Redis never takes the tests' tasks.
os.environ.setdefault("CELERY_QUEUE", f"test-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{uuid.uuid4().hex[:8]}")
# Under pytest-xdist (`make test` runs two processes) each process has its own test database
# (pytest-django adds the worker's name to it) and so its own queue and cache keys: a task
# queued by one must never be taken by the other's worker. The workers inherit the names above
# from the controller; the worker's name makes them its own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("CELERY_QUEUE", "CACHE_KEY_PREFIX"):
        if not os.environ[_name].endswith(os.environ["PYTEST_XDIST_WORKER"]):
            os.environ[_name] += "-" + os.environ["PYTEST_XDIST_WORKER"]
# Playwright's sync API runs an event loop in the test thread; the ORM calls are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _use_test_queue() -> None:
    """pytest-django reads the settings before this file runs: point Celery at our queue too."""
    from django.conf import settings

    from bpjsportal.celery import app

    settings.CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_QUEUE"]
    app.conf.task_default_queue = os.environ["CELERY_QUEUE"]


_use_test_queue()

ROOT = Path(__file__).resolve().parent.parent


# --- the clock (tests/clock.py) -------------------------------------------------------------
_session_travel: list[time_machine.travel] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clock(instant): pin the test's clock at an ISO instant")
    config.addinivalue_line(
        "markers",
        "real_clock(why): the real time even under BPU_TEST_CLOCK (PostgreSQL's clock cannot "
        "travel: for a test that compares the two clocks' stamps)",
    )
    config.addinivalue_line(
        "markers",
        "two_clocks(day=None): run at 23:30 UTC and at 00:30 WIB of the session's Jakarta day",
    )
    config.addinivalue_line(
        "markers",
        "today: date-sensitive, on the session's day (two_clocks without day= carry it): "
        "`make test` runs them again at BPU_TEST_CLOCK=2026-12-31T23:30:00Z",
    )
    config.addinivalue_line(
        "markers",
        "not_on_cluster(why): a known gap on a Citus cluster (docs/operations.md, 'Not yet done "
        "on the cluster'); under BPU_TEST_CITUS=1 the test is a strict xfail (varies=True: "
        "skipped there, for a gap whose outcome depends on timing)",
    )
    instant = clock.session_instant()  # BPU_TEST_CLOCK: the whole session, ticking
    if instant is not None and not _session_travel:
        _session_travel.append(time_machine.travel(instant, tick=True))
        _session_travel[0].start()


def pytest_unconfigure(config: pytest.Config) -> None:
    while _session_travel:
        _session_travel.pop().stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock: {clock.ENV}={os.environ.get(clock.ENV) or '(real time)'}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("two_clocks")
    if marker is not None:
        day = marker.kwargs.get("day")
        day = date.fromisoformat(day) if day else clock.jakarta_day()
        metafunc.parametrize(
            "_clock",
            [clock.two_clocks_instant(day, i) for i in clock.TWO_CLOCKS],
            ids=list(clock.TWO_CLOCKS),
            indirect=True,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("two_clocks")
        if marker is not None and not marker.kwargs.get("day"):
            item.add_marker(pytest.mark.today)
        gap = item.get_closest_marker("not_on_cluster")
        if gap is not None and os.environ.get("BPU_TEST_CITUS") == "1":
            # a known gap on a cluster (docs/operations.md): the test must still fail there, so
            # the day it passes the marker has to go; a gap whose outcome depends on timing
            # (varies=True) is skipped there instead, with its reason in the report
            why = f"cluster: {gap.args[0]}"
            if gap.kwargs.get("varies"):
                item.add_marker(pytest.mark.skip(reason=why))
            else:
                item.add_marker(pytest.mark.xfail(strict=True, reason=why))


@pytest.fixture(autouse=True)
def _clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """The clock of a `two_clocks` or `clock(instant)` test, pinned (and ticking) before any
    other fixture of the test computes "today"."""
    instant = getattr(request, "param", None)
    marker = request.node.get_closest_marker("clock")
    if instant is None and marker is not None:
        instant = clock.parse_instant(marker.args[0])
    if instant is None and request.node.get_closest_marker("real_clock") is not None:
        instant = clock.real_now() if time_machine.escape_hatch.is_travelling() else None
    if instant is None:
        yield
        return
    with time_machine.travel(instant, tick=True):
        yield


PASSWORD = "test-pass-2024-xyz"


# --- on a Citus cluster (BPU_TEST_CITUS=1) ------------------------------------------------------
# `make test` runs the cluster subset (bpjsportal/launcher.py, CLUSTER_TESTS) a second time with
# BPU_TEST_CITUS=1 and --reuse-db: the session starts a coordinator and two workers
# (bpjsportal/core/citus_cluster.py), creates the test database on every node, and points the
# default connection at the coordinator; after the migrations, distribute_tables shards it.
CITUS = os.environ.get("BPU_TEST_CITUS") == "1"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    request: pytest.FixtureRequest, django_db_modify_db_settings_parallel_suffix: None
) -> None:
    if not CITUS:
        return
    from django.conf import settings

    from bpjsportal.core.citus_cluster import LocalCluster

    if not request.config.getoption("reuse_db"):
        raise pytest.UsageError("BPU_TEST_CITUS=1 needs --reuse-db (the database is made here)")
    cluster = LocalCluster(workers=2)
    request.addfinalizer(cluster.stop)
    cluster.start()
    db = settings.DATABASES["default"]
    cluster.create_database(db["TEST"]["NAME"])
    db.update(HOST="127.0.0.1", PORT=str(cluster.coordinator_port), USER="postgres", PASSWORD="")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> None:
    """The test database gets the real reference data once (regions, occupations, rates); on a
    cluster, its tables are distributed first."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        if CITUS:
            call_command("distribute_tables", verbosity=0, stdout=io.StringIO())
            from django.db import connections

            connections.close_all()  # the database's settings (distribute_tables) apply anew
        call_command("load_reference_data", verbosity=0)


@pytest.fixture
def refdata(db: Any) -> None:
    """Reference data, reloaded if a transactional test's flush removed it."""
    from django.core.management import call_command

    from enrollment.models import Region

    if not Region.objects.filter(level=4).exists():
        call_command("load_reference_data", verbosity=0)


@pytest.fixture
def tx_refdata(transactional_db: Any) -> None:
    from django.core.management import call_command

    from enrollment.models import Region

    if not Region.objects.filter(level=4).exists():
        call_command("load_reference_data", verbosity=0)


@pytest.fixture(autouse=True)
def _language_as_found() -> Iterator[None]:
    """Each test leaves this thread's active language as it found it: a request the test client
    sends with Accept-Language: en activates English in the test's own thread (LocaleMiddleware
    does not deactivate it), and a later test reading a message would get English."""
    from django.utils import translation

    before = translation.get_language()
    yield
    if before:
        translation.activate(before)
    else:
        translation.deactivate()


@pytest.fixture(autouse=True)
def _celery_app_as_found() -> Iterator[None]:
    """Each test leaves this process's Celery app as it found it: the same broker and result
    store, and no result backend or pool still built for another one (a test that points Celery
    at a server of its own must undo all of it, tests/contributions/test_redis_outage.py)."""
    from bpjsportal.celery import app

    def state() -> tuple[Any, ...]:
        backend = app._backend.url if app._backend is not None else app.conf.result_backend
        # (the backend this thread would use: thread-safe ones are shared, others per thread)
        broker = app.connection_for_write().as_uri()
        pool = app._pool.connection.as_uri() if app._pool is not None else broker
        return app.conf.broker_url, app.conf.result_backend, backend, broker, pool

    before = state()
    yield
    after = state()
    assert after == before, f"the test left Celery on {after}, found it on {before}"


@pytest.fixture(autouse=True)
def _fresh_rate_book() -> Iterator[None]:
    """Rate tables and the holiday calendar are cached per process; a rolled-back test must not
    leave its rows there."""
    from contributions.due_dates import clear_calendar
    from contributions.rates import clear_rate_book

    clear_rate_book()
    clear_calendar()
    yield
    clear_rate_book()
    clear_calendar()


# --- people -----------------------------------------------------------------------------
def make_staff(username: str, role: str, branch: Any | None) -> Any:
    from django.contrib.auth import get_user_model

    from enrollment.models import StaffProfile

    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role == "admin":
        user.is_staff = user.is_superuser = True
        user.save()
    StaffProfile.objects.create(
        user=user, role=role, branch=branch, agent_code=f"A-{username}" if role == "agent" else None
    )
    if role == "admin":
        add_totp_device(user)
    return user


# --- logging in (password, then the TOTP step for roles that need it) ----------------------------
TOTP_KEY = "3132333435363738393031323334353637383930"  # test devices' key (RFC 6238 test key)


def add_totp_device(user: Any) -> Any:
    """A confirmed TOTP device with the tests' known key (admins and regional admins need one)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _created = TOTPDevice.objects.get_or_create(
        user=user, name="test", defaults={"key": TOTP_KEY, "confirmed": True}
    )
    return device


def totp_code(device: Any) -> str:
    """The device's current code, as the user's authenticator app shows it."""
    from django_otp.oath import totp

    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def login_as(client: Any, user: Any, *, with_password: bool = False) -> Any:
    """Log the test client in as `user` — and, for a user who must pass the second factor,
    mark the session verified with the user's TOTP device exactly as django_otp.login() does
    after a correct code (the real code path is tested in tests/bpjsportal/test_access.py)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from enrollment.permissions import requires_otp

    if with_password:
        assert password_login(client, user)
    else:
        client.force_login(user)
    user = type(user).objects.get(pk=user.pk)  # the role as stored now, not a cached profile
    if requires_otp(user):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = add_totp_device(user).persistent_id
        session.save()
    return client


def password_login(client: Any, user: Any, password: str = PASSWORD) -> bool:
    """The test client's password login; django-axes needs the request, so one is passed."""
    from django.http import HttpRequest

    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    ok: bool = client.login(request=request, username=user.username, password=password)
    return ok


@pytest.fixture
def branches(refdata: Any) -> dict[str, Any]:
    from enrollment.models import Branch

    return {
        "BDG": Branch.objects.create(code="BDG", name="Bandung", province_id="32"),
        "SBY": Branch.objects.create(code="SBY", name="Surabaya", province_id="35"),
    }


@pytest.fixture
def agent(branches: dict[str, Any]) -> Any:
    return make_staff("agent_bdg", "agent", branches["BDG"])


@pytest.fixture
def other_agent(branches: dict[str, Any]) -> Any:
    return make_staff("agent_sby", "agent", branches["SBY"])


@pytest.fixture
def supervisor(branches: dict[str, Any]) -> Any:
    return make_staff("super_bdg", "supervisor", branches["BDG"])


@pytest.fixture
def admin_user(branches: dict[str, Any]) -> Any:
    return make_staff("boss", "admin", None)


# --- registration data --------------------------------------------------------------------
VILLAGE = "32.73.05.1001"  # a kelurahan in Kota Bandung
BORN = date(1990, 5, 17)


def nik_for(
    birth_date: date = BORN, sex: str = "M", serial: int = 1, prefix: str = "327305"
) -> str:
    from enrollment.nik import build_nik

    return build_nik(prefix, birth_date, sex, serial)


def registration_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "nik": nik_for(),
        "full_name": "Budi Santoso",
        "birth_date": BORN,
        "sex": "M",
        "phone": "081234567890",
        "village": VILLAGE,
        "address": "Jl. Melati No. 5, RT 02/RW 03",
        "occupation": "petani",
        "declared_income": 1_000_000,
        "channel": "agent",
        "consent_data": True,
    }
    data.update(overrides)
    return data


@pytest.fixture
def register(refdata: Any) -> Any:
    from enrollment.services import register_participant

    def _register(**overrides: Any) -> Any:
        return register_participant(**registration_data(**overrides))

    return _register


# --- a real Celery worker -------------------------------------------------------------------
def _test_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += ":" + s["PASSWORD"]
    host = s.get("HOST") or (s.get("OPTIONS") or {}).get("host") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{s['NAME']}?host={host}"
    return f"postgres://{auth}@{host}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_worker(pool: str = "solo", **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """A `celery worker` subprocess on the test queue against the test database; waits until
    it answers a ping addressed to it (not to anyone else's worker on the same Redis).
    `pool="prefork"` runs one child process (a test can kill it mid-task)."""
    from bpjsportal.celery import app

    node = f"test-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    full_env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DB_CONN_MAX_AGE": "0",
        **clock.subprocess_env(),  # the worker's now is the test's (`python -m tests.clock`)
        **env,
    }
    (ROOT / "var").mkdir(exist_ok=True)
    with open(ROOT / "var" / "test-celery-worker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.clock", "-m", "celery", "-A", "bpjsportal", "worker",
             f"--pool={pool}",
             *(["--concurrency=1"] if pool == "prefork" else []),
             "-Q", os.environ["CELERY_QUEUE"], "-l", "info", "--without-heartbeat",
             "--without-gossip", "--without-mingle", "-n", node],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if app.control.ping(destination=[node], timeout=0.5):
            return proc, node
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited; see var/test-celery-worker.log")
    proc.kill()
    raise RuntimeError("celery worker did not answer a ping within 30 s")


@pytest.fixture
def celery_worker(transactional_db: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process on the real Redis broker, against the test database."""
    proc, _node = start_worker()
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- a real browser ---------------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="id-ID")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def login(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    home = f"{live_server.url}/"
    page.wait_for_url(lambda url: url == home or "/login/otp/" in url)
    if "/login/otp/" in page.url:  # admins: the TOTP step, with the code an app would show
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username=username)
        page.fill("#id_token", totp_code(add_totp_device(user)))
        page.click("#otp-submit")
    page.wait_for_url(f"{live_server.url}/")
