"""Logs never hold a full NIK, phone number, API token or password (bpjsportal/core/logging.py).

The real paths run with SQL logging switched on (django.db.backends at DEBUG, as an operator
might do to debug production): every statement is logged with its parameters, so NIKs and phone
numbers do reach the logging calls. The test reads what the *configured* handler (settings
LOGGING, root "console") wrote, and every record pytest captured, and looks for any full value."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from bpjsportal.core.logging import MaskPersonalDataFilter, install_on_celery_loggers, mask_text
from tests.api.conftest import Caller, next_nik, reg_body
from tests.conftest import PASSWORD, nik_for, password_login
from tests.enrollment.test_views import form_data

pytestmark = pytest.mark.django_db

WRONG_PASSWORD = "Sangat-Rahasia-991"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The configured root handler, writing into a buffer; SQL statements logged with params."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    configured = [
        h for h in handlers if any(isinstance(f, MaskPersonalDataFilter) for f in h.filters)
    ]
    assert configured, "settings.LOGGING's handler lost the personal-data filter"
    handler = configured[0]
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    sql_logger = logging.getLogger("django.db.backends")
    old_level, old_debug = sql_logger.level, connection.force_debug_cursor
    sql_logger.setLevel(logging.DEBUG)
    connection.force_debug_cursor = True
    try:
        yield buffer
    finally:
        handler.setStream(old_stream)  # type: ignore[arg-type]
        sql_logger.setLevel(old_level)
        connection.force_debug_cursor = old_debug


def assert_clean(text: str, caplog: Any, secrets: list[str]) -> None:
    captured = [text, *(r.getMessage() for r in caplog.records)]
    for secret in secrets:
        for chunk in captured:
            assert secret not in chunk, f"{secret!r} leaked into a log record"


def test_real_paths_log_no_nik_phone_token_or_password(
    console: io.StringIO, caplog: Any, agent: Any, admin_api: Caller
) -> None:
    caplog.set_level(logging.DEBUG)
    # 1. A failed login with a password, then a good one.
    web = Client()
    r = web.post("/login/", {"username": agent.username, "password": WRONG_PASSWORD})
    assert r.status_code == 200
    assert password_login(web, agent)
    # 2. A registration on the web form, with a NIK and a phone number.
    nik, phone = nik_for(serial=41), "081298765432"
    r = web.post("/register/", form_data(nik=nik, phone=phone), follow=True)
    assert r.status_code == 200
    # 3. API calls with a token: a registration, a 400 with the NIK in the payload, a 404 with
    # the NIK in the path, and a call with a wrong token.
    api_nik = next_nik()
    assert admin_api.post("/api/v1/participants/", reg_body(nik=api_nik)).status_code == 201
    r = admin_api.post("/api/v1/participants/", reg_body(nik=api_nik, phone="12"))
    assert r.status_code in (400, 409)
    assert admin_api.get(f"/api/v1/participants/{api_nik}/").status_code == 404
    forged = admin_api.token[:-4] + "AAAA"
    r = Client().get("/api/v1/participants/", HTTP_AUTHORIZATION=f"Token {forged}")
    assert r.status_code == 401
    # 4. A Celery task (run in this process) that writes and logs.
    from contributions.tasks import plan_reminders

    assert plan_reminders.apply(kwargs={"dispatch": False}).successful()
    # The NIK is stored as a digest and ciphertext, so SQL logs no longer carry the web form's
    # NIK: log it once the way a careless line would, so the filter is seen to mask it.
    logging.getLogger("enrollment.views").warning("registration for NIK %s", nik)
    logging.getLogger("contributions.tasks").warning(
        "retrying with headers %s", {"HTTP_AUTHORIZATION": f"Token {admin_api.token}"}
    )

    text = console.getvalue()
    # The paths did log the personal data (masked): the check below can fail.
    assert f"{nik[:4]}**********{nik[-2:]}" in text
    assert f"{api_nik[:4]}**********{api_nik[-2:]}" in text
    assert "planned reminders" in text
    assert "retrying with headers {'HTTP_AUTHORIZATION': 'Token ***" in text
    assert_clean(
        text,
        caplog,
        [nik, api_nik, phone, "+6281298765432", admin_api.token, forged, WRONG_PASSWORD, PASSWORD],
    )


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("nik=3273051705900001 saved", "3273051705900001"),
        ("NIK 3273 0517 0590 0001", "3273 0517 0590 0001"),
        ("Key (nik)=(3273051705900001) already exists.", "3273051705900001"),
        ("phone +6281234567890", "+6281234567890"),
        ("phone 0812-3456-7890", "0812-3456-7890"),
        ("phone 6281234567890", "6281234567890"),
        ("token bpu_a7f53129_Cl0qcZTpvPyzUNtLPG1Zscw0GLIdqWCq0JLAfaKT_nE", "Cl0qcZTpvPyzUNtLPG1"),
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        ("<QueryDict: {'username': ['budi'], 'password': ['Rahasia-1']}>", "Rahasia-1"),
        ('{"password": "Rahasia 2", "token": "t0k3n-value"}', "Rahasia 2"),
        ('{"password": "Rahasia 2", "token": "t0k3n-value"}', "t0k3n-value"),
        ("login password=Rahasia-3&next=/", "Rahasia-3"),
        ("new_password1: Rahasia-4", "Rahasia-4"),
    ],
)
def test_mask_text(raw: str, secret: str) -> None:
    masked = mask_text(raw)
    assert secret not in masked and masked != raw


def test_mask_keeps_ordinary_numbers() -> None:
    text = "KPJ 10000000012 paid Rp 1,000,000 for 3 months on 2026-11-25; 200 OK"
    assert mask_text(text) == text


def test_filter_masks_args_and_exceptions() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed for %s (%d)", ("3273051705900001", 3), None
    )
    try:
        raise ValueError("duplicate NIK 3273051705900001")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert MaskPersonalDataFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "3273051705900001" not in text and "3273**********01" in text


def test_every_configured_handler_and_celery_worker_handlers_get_the_filter() -> None:
    from django.conf import settings

    for name, handler in settings.LOGGING["handlers"].items():
        assert "mask_personal_data" in handler.get("filters", []), name
    worker_logger = logging.getLogger("celery.worker.test")
    handler = logging.StreamHandler(io.StringIO())
    worker_logger.addHandler(handler)
    try:
        install_on_celery_loggers(logger=worker_logger)
        assert any(isinstance(f, MaskPersonalDataFilter) for f in handler.filters)
    finally:
        worker_logger.removeHandler(handler)
