"""Login hardening (docs/security.md, "Login and sessions" and "Security headers"): Argon2,
lockout after failed logins, the TOTP step for admins, idle sessions, CSP, CSRF."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from tests.conftest import PASSWORD, add_totp_device, login_as, make_staff, totp_code

ROOT = Path(__file__).resolve().parents[2]


def _password_login(c: Client, username: str, password: str = PASSWORD) -> Any:
    return c.post("/login/", {"username": username, "password": password})


# --- passwords ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2(agent: Any) -> None:
    agent.refresh_from_db()
    assert agent.password.startswith("argon2$")


@pytest.mark.django_db
def test_an_old_pbkdf2_hash_is_upgraded_to_argon2_at_login(agent: Any) -> None:
    from django.contrib.auth.hashers import make_password

    type(agent).objects.filter(pk=agent.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )
    response = _password_login(Client(), agent.username)
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.password.startswith("argon2$")


# --- lockout ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_five_failed_logins_lock_the_username_with_a_clear_page(agent: Any) -> None:
    c = Client()
    for _ in range(4):
        response = _password_login(c, agent.username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    locked = _password_login(c, agent.username, "wrong-password")
    assert locked.status_code == 429
    assert "locked-out" in locked.content.decode()
    # Even the right password is refused during the cool-off, with the same page.
    again = _password_login(c, agent.username)
    assert again.status_code == 429
    assert "_auth_user_id" not in c.session


@pytest.mark.django_db
def test_lockout_page_speaks_english_and_indonesian(agent: Any) -> None:
    for _ in range(5):
        _password_login(Client(), agent.username, "wrong-password")
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.cookies.load({"django_language": "en"})
    body = _password_login(english, agent.username).content.decode()
    assert "Too many failed logins (5)" in body and "30 minutes" in body
    indonesian = Client(HTTP_ACCEPT_LANGUAGE="id")
    body_id = _password_login(indonesian, agent.username).content.decode()
    assert "30" in body_id and 'lang="id"' in body_id


@pytest.mark.django_db
def test_lockout_counts_username_and_address_together(agent: Any) -> None:
    for _ in range(5):
        Client(REMOTE_ADDR="10.0.0.1").post(
            "/login/", {"username": agent.username, "password": "wrong-password"}
        )
    elsewhere = Client(REMOTE_ADDR="10.0.0.2")
    response = elsewhere.post("/login/", {"username": agent.username, "password": PASSWORD})
    assert response.status_code == 302  # another address is not locked


def test_client_ip_behind_proxies_takes_the_proxy_seen_address(settings: Any) -> None:
    from bpjsportal.access import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    settings.ACCESS_PROXY_COUNT = 0
    assert client_ip(request) == "10.9.9.9"
    settings.ACCESS_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # never the forgeable left end


# --- two-factor ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_admin_is_sent_to_the_totp_step_after_the_password(admin_user: Any) -> None:
    c = Client()
    response = _password_login(c, admin_user.username)
    assert response.status_code == 302
    home = c.get("/")
    assert home.status_code == 302 and home["Location"].startswith("/login/otp/?next=")
    for path in ("/reports/", "/participants/1/", "/admin/", "/reminders/today/"):
        r = c.get(path)
        assert r.status_code == 302 and "/login/otp/" in r["Location"], path
    api = c.get("/api/v1/reports/progress/")
    assert api.status_code == 403 and api.json()["code"] == "otp_required"
    assert api.json()["errors"] == []  # the API's one error body (docs/api.md)


@pytest.mark.django_db
def test_a_wrong_totp_code_is_refused(admin_user: Any) -> None:
    c = Client()
    _password_login(c, admin_user.username)
    device = add_totp_device(admin_user)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = c.post("/login/otp/", {"token": wrong, "next": "/"})
    assert response.status_code == 400
    assert "wrong or has expired" in response.content.decode() or "salah" in (
        response.content.decode()
    )
    assert c.get("/").status_code == 302  # still not through


@pytest.mark.django_db
def test_the_right_totp_code_lets_the_admin_in(admin_user: Any) -> None:
    c = Client()
    _password_login(c, admin_user.username)
    code = totp_code(add_totp_device(admin_user))
    response = c.post("/login/otp/", {"token": code, "next": "/reports/"})
    assert response.status_code == 302 and response["Location"] == "/reports/"
    assert c.get("/").status_code == 200
    assert c.get("/admin/").status_code == 200
    assert c.get("/api/v1/reports/progress/").status_code == 200


def _session_key(c: Client) -> str:
    from django.conf import settings

    return c.cookies[settings.SESSION_COOKIE_NAME].value


def _client_with_session(key: str) -> Client:
    from django.conf import settings

    c = Client()
    c.cookies[settings.SESSION_COOKIE_NAME] = key
    return c


@pytest.mark.django_db
def test_the_totp_step_rotates_the_session_key(admin_user: Any) -> None:
    """A session key known before the second factor (fixed by an attacker, or seen on a shared
    machine) must not become a verified session: the key changes and the old one is gone."""
    c = Client()
    _password_login(c, admin_user.username)
    before = _session_key(c)
    code = totp_code(add_totp_device(admin_user))
    response = c.post("/login/otp/", {"token": code, "next": "/reports/"})
    assert response.status_code == 302 and response["Location"] == "/reports/"
    after = _session_key(c)
    assert after != before
    assert c.get("/reports/").status_code == 200
    old = _client_with_session(before).get("/reports/")
    assert old.status_code == 302 and old["Location"].startswith("/login/?")


@pytest.mark.django_db
def test_the_totp_set_up_rotates_the_session_key(branches: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from enrollment.models import StaffProfile

    user = make_staff("jabar3", "agent", branches["BDG"])
    StaffProfile.objects.filter(user=user).update(
        role="regional_admin", branch=None, province_id="32", agent_code=None
    )
    c = Client()
    _password_login(c, user.username)
    assert c.get("/login/otp/setup/").status_code == 200
    before = _session_key(c)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    confirmed = c.post("/login/otp/setup/", {"token": totp_code(device), "next": "/reports/"})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/reports/"
    assert _session_key(c) != before
    assert c.get("/reports/").status_code == 200
    old = _client_with_session(before).get("/reports/")
    assert old.status_code == 302 and old["Location"].startswith("/login/?")


@pytest.mark.django_db
def test_regional_admin_needs_the_second_factor_too(branches: Any) -> None:
    from enrollment.models import StaffProfile

    user = make_staff("jabar2", "agent", branches["BDG"])
    StaffProfile.objects.filter(user=user).update(
        role="regional_admin", branch=None, province_id="32", agent_code=None
    )
    c = Client()
    _password_login(c, user.username)
    response = c.get("/reports/")
    # no device yet: the set-up page, with a QR code and the key to type in
    assert response.status_code == 302 and response["Location"].startswith("/login/otp/setup/")
    setup = c.get(response["Location"])
    assert setup.status_code == 200
    assert b"<svg" in setup.content and b'id="otp-key"' in setup.content
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user, confirmed=False)
    confirmed = c.post("/login/otp/setup/", {"token": totp_code(device), "next": "/reports/"})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/reports/"
    device.refresh_from_db()
    assert device.confirmed
    assert c.get("/reports/").status_code == 200


@pytest.mark.django_db
def test_agents_log_in_without_a_second_factor_unless_they_enrolled(agent: Any) -> None:
    c = Client()
    _password_login(c, agent.username)
    assert c.get("/").status_code == 200
    add_totp_device(agent)  # the agent chose to enrol: from the next login on, it is required
    c2 = Client()
    _password_login(c2, agent.username)
    response = c2.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/otp/")


@pytest.mark.django_db
def test_back_office_refuses_an_unverified_superuser_session(admin_user: Any) -> None:
    c = Client()
    c.force_login(admin_user)  # password only, no TOTP step
    response = c.get("/admin/contributions/payment/")
    assert response.status_code == 302 and "/login/otp/" in response["Location"]


@pytest.mark.django_db
def test_back_office_is_for_the_admin_role_only(supervisor: Any) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=supervisor.pk).update(is_staff=True)
    c = login_as(Client(), supervisor)
    assert c.get("/admin/").status_code == 302
    assert c.get("/admin/enrollment/participant/").status_code == 302


@pytest.mark.django_db
def test_demo_admins_have_the_published_totp_key(refdata: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from enrollment.demo import DEMO_TOTP_KEY, seed_demo

    seed_demo(participants_per_agent=0)
    keys = dict(TOTPDevice.objects.values_list("user__username", "key"))
    assert keys == {"admin": DEMO_TOTP_KEY, "jabar": DEMO_TOTP_KEY}


# --- sessions -----------------------------------------------------------------------------------
def test_sessions_expire_with_the_browser_and_after_a_working_day(settings: Any) -> None:
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.django_db
def test_an_idle_session_is_logged_out(agent: Any) -> None:
    from bpjsportal.access import LAST_SEEN_SESSION_KEY

    c = login_as(Client(), agent)
    assert c.get("/").status_code == 200
    session = c.session
    session[LAST_SEEN_SESSION_KEY] = int(time.time()) - 31 * 60
    session.save()
    response = c.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
@override_settings(SESSION_IDLE_TIMEOUT=0)
def test_idle_timeout_can_be_switched_off(agent: Any) -> None:
    from bpjsportal.access import LAST_SEEN_SESSION_KEY

    c = login_as(Client(), agent)
    session = c.session
    session[LAST_SEEN_SESSION_KEY] = int(time.time()) - 10 * 3600
    session.save()
    assert c.get("/").status_code == 200


# --- headers and forms --------------------------------------------------------------------------
@pytest.mark.django_db
def test_csp_header_allows_no_inline_scripts_or_styles(agent: Any) -> None:
    response = login_as(Client(), agent).get("/")
    policy = response["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_templates_hold_no_inline_scripts_styles_or_handlers() -> None:
    for path in list((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"<style\b", text), path
        assert not re.search(r"\sstyle=", text), path
        assert not re.search(r"\son[a-z]+=", text), path


@pytest.mark.django_db
def test_api_docs_page_has_no_inline_script() -> None:
    body = Client().get("/api/docs/").content.decode()
    assert "<style" not in body
    for tag in re.findall(r"<script\b[^>]*>", body):
        assert "src=" in tag
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_a_post_without_csrf_token_is_refused(agent: Any) -> None:
    c = Client(enforce_csrf_checks=True)
    login_as(c, agent)
    response = c.post("/register/", {"nik": "3273051705900001"})
    assert response.status_code == 403
    page = c.get("/register/").content.decode()
    forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", page, re.S | re.I)
    assert forms and all("csrfmiddlewaretoken" in f for f in forms)
