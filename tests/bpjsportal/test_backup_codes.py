"""TOTP backup codes (issue 22, "API and admin polish"): an admin who loses their phone logs in
with a single-use backup code; codes are stored only as keyed digests, new codes cancel the old,
only a session past the second factor may make codes, and every issue and use is audited."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken

from bpjsportal.audit.models import BackupCodeEvent  # type: ignore[attr-defined]
from bpjsportal.two_factor import BACKUP_CODES, backup_digest
from tests.conftest import login_as, password_login

pytestmark = pytest.mark.django_db

URL = "/login/otp/backup-codes/"


def _english() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")  # the sentences below are checked in English


def _make_codes(admin_user: Any) -> list[str]:
    client = login_as(_english(), admin_user)
    page = client.get(URL)
    assert page.status_code == 200 and b"0 unused backup codes" in page.content
    made = client.post(URL)
    assert made.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{4}-[a-z2-9]{4})</code>", made.content.decode())
    assert len(codes) == BACKUP_CODES == len(set(codes))
    return codes


def _second_step(code: str, admin_user: Any) -> tuple[Client, Any]:
    client = _english()
    assert password_login(client, admin_user)
    response = client.post("/login/otp/", {"token": code, "next": "/reports/"})
    return client, response


def test_a_backup_code_logs_in_once(admin_user: Any) -> None:
    codes = _make_codes(admin_user)
    # stored as digests only: no code is in the table
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert stored == {backup_digest(c) for c in codes}
    assert not stored & set(codes)

    client, response = _second_step(codes[3].upper().replace("-", " "), admin_user)  # as typed
    assert response.status_code == 302 and response["Location"] == "/reports/"
    assert client.get("/reports/").status_code == 200  # a verified session
    assert StaticToken.objects.count() == BACKUP_CODES - 1

    _client, again = _second_step(codes[3], admin_user)
    assert again.status_code == 400
    assert "used already" in again.content.decode()


def test_new_codes_cancel_the_old_ones(admin_user: Any) -> None:
    old = _make_codes(admin_user)
    new = _make_codes(admin_user)
    assert not set(old) & set(new)
    assert "used already" in _second_step(old[0], admin_user)[1].content.decode()
    time.sleep(1.5)  # a wrong code makes the next try wait a second (django-otp's throttling)
    assert _second_step(new[0], admin_user)[1].status_code == 302


def test_a_password_alone_cannot_make_codes(admin_user: Any) -> None:
    client = Client()
    assert password_login(client, admin_user)  # no second factor yet
    for response in (client.get(URL), client.post(URL)):
        assert response.status_code == 302 and response["Location"].startswith("/login/otp/")
    assert StaticToken.objects.count() == 0
    assert Client().get(URL).status_code == 302  # anonymous: to the login page


def test_bad_codes_are_refused_clearly(admin_user: Any) -> None:
    for typed in ("12345", "abc", "abcd-efg!", "1234567"):
        _client, response = _second_step(typed, admin_user)
        assert response.status_code == 400, typed
        assert "backup codes (xxxx-xxxx)" in response.content.decode()
    # Indonesian by default
    client = Client()
    assert password_login(client, admin_user)
    response = client.post("/login/otp/", {"token": "abc"})
    assert "salah satu kode cadangan Anda (xxxx-xxxx)" in response.content.decode()
    # a well-formed code of a user with no backup codes
    _client, response = _second_step("abcd-efgh", admin_user)
    assert response.status_code == 400
    assert "no backup codes" in response.content.decode()


def test_issuing_and_using_codes_is_audited(admin_user: Any) -> None:
    codes = _make_codes(admin_user)
    _second_step(codes[0], admin_user)
    issued = BackupCodeEvent.objects.filter(pgh_label="backup_code.issue")
    removed = BackupCodeEvent.objects.filter(pgh_label="backup_code.remove")
    assert issued.count() == BACKUP_CODES
    assert {e.pgh_context["backup_code"] for e in issued} == {"replaced"}
    assert {e.pgh_context["username"] for e in issued} == {admin_user.username}
    [used] = removed
    assert used.pgh_context["backup_code"] == "used"
    assert used.pgh_context["username"] == admin_user.username
    assert used.pgh_context["ip"] == "127.0.0.1"
    assert not hasattr(used, "token")  # the digest is not copied
