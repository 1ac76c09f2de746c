"""Tokens, clients, revocation, the admin page, the command, throttling."""

from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from enrollment.api.clients import revoke_api_client
from enrollment.models import ApiClient
from tests.conftest import login_as

URL = "/api/v1/occupations/"


def test_no_token_is_401_with_code(refdata: Any) -> None:
    r = Client().get(URL)
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


def test_a_staff_password_is_never_an_api_credential(admin_user: Any) -> None:
    """HTTP Basic with a valid staff password (no second factor) opens no API view."""
    import base64

    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework.authentication import BasicAuthentication
    from rest_framework.views import APIView

    from tests.conftest import PASSWORD

    basic = base64.b64encode(f"{admin_user.username}:{PASSWORD}".encode()).decode()
    for url in (URL, "/api/v1/participants/", "/api/v1/reports/progress/"):
        r = Client().get(url, HTTP_AUTHORIZATION=f"Basic {basic}")
        assert r.status_code == 401, url

    def views(patterns: list[Any]) -> list[Any]:
        found = []
        for p in patterns:
            if isinstance(p, URLResolver):
                found += views(p.url_patterns)
            elif isinstance(p, URLPattern):
                found.append(getattr(p.callback, "cls", None))
        return found

    api_views = [v for v in views(get_resolver().url_patterns) if v and issubclass(v, APIView)]
    assert len(api_views) > 10
    for view in api_views:
        assert BasicAuthentication not in view().authentication_classes, view


def test_wrong_token_is_401_invalid_token(admin_api: Any) -> None:
    r = Client().get(URL, HTTP_AUTHORIZATION="Token bpu_deadbeef_nope")
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


def test_non_ascii_token_is_401(admin_api: Any) -> None:
    r = Client().get(URL, HTTP_AUTHORIZATION="Token bpu_１２３")
    assert r.status_code == 401


def test_token_is_stored_hashed_only(admin_api: Any) -> None:
    client = ApiClient.objects.get(pk=admin_api.client.pk)
    assert client.token_hash == hashlib.sha256(admin_api.token.encode()).hexdigest()
    assert admin_api.token not in str(ApiClient.objects.filter(pk=client.pk).values().get())


def test_valid_token_works_and_records_last_use(admin_api: Any) -> None:
    assert admin_api.get(URL).status_code == 200
    assert ApiClient.objects.get(pk=admin_api.client.pk).last_used_at is not None


def test_revoked_token_stops_working(admin_api: Any) -> None:
    revoke_api_client(admin_api.client)
    r = admin_api.get(URL)
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


def test_command_prints_the_token_once(partners: Any) -> None:
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_client",
        "ComboFit app",
        "--scope",
        "partner",
        "--partner",
        "COMBOFIT",
        stdout=out,
        stderr=err,
    )
    token = out.getvalue().strip()
    client = ApiClient.objects.get(name="ComboFit app")
    assert client.partner is not None and client.partner.code == "COMBOFIT"
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_command_refuses_partner_scope_without_partner(refdata: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_client", "x", "--scope", "partner")


def test_command_agent_scope(agent: Any) -> None:
    out = StringIO()
    call_command(
        "create_api_client",
        "Agent app",
        "--scope",
        "agent",
        "--agent",
        "agent_bdg",
        stdout=out,
        stderr=StringIO(),
    )
    assert ApiClient.objects.get(name="Agent app").agent == agent.staff


def test_admin_add_shows_token_once_and_revoke_action(admin_user: Any) -> None:
    web = Client()
    login_as(web, admin_user)
    r = web.post(
        "/admin/enrollment/apiclient/add/",
        {"name": "Bank X", "scope": "channel", "payment_channel": "bank"},
        follow=True,
    )
    assert r.status_code == 200
    client = ApiClient.objects.get(name="Bank X")
    shown = [str(m) for m in r.context["messages"]]
    token = next(m.split(": ")[-1] for m in shown if "bpu_" in m)
    assert hashlib.sha256(token.encode()).hexdigest() == client.token_hash
    page = web.get(f"/admin/enrollment/apiclient/{client.pk}/change/")
    assert token not in page.content.decode()
    web.post(
        "/admin/enrollment/apiclient/",
        {"action": "revoke", "_selected_action": [client.pk]},
    )
    client.refresh_from_db()
    assert client.active is False and client.revoked_at is not None


def test_admin_add_form_refuses_agent_scope_without_agent(admin_user: Any) -> None:
    web = Client()
    login_as(web, admin_user)
    r = web.post("/admin/enrollment/apiclient/add/", {"name": "x", "scope": "agent"})
    assert r.status_code == 200  # the form again, with the error
    assert not ApiClient.objects.filter(name="x").exists()


def test_throttle_gives_429_with_retry_after(admin_api: Any, settings: Any) -> None:
    settings.API_THROTTLE_RATE = "3/min"
    codes = [admin_api.get(URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = admin_api.get(URL)
    assert r.status_code == 429
    assert int(r["Retry-After"]) > 0
    assert r.json()["code"] == "throttled"


def test_throttle_is_per_client(make_caller: Any, settings: Any) -> None:
    settings.API_THROTTLE_RATE = "2/min"
    a, b = make_caller("admin"), make_caller("admin")
    assert [a.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    assert b.get(URL).status_code == 200


def test_messages_are_indonesian_by_default_english_on_request(refdata: Any) -> None:
    id_msg = Client().get(URL).json()["message"]
    en_msg = Client().get(URL, HTTP_ACCEPT_LANGUAGE="en").json()["message"]
    assert en_msg == "Send the API token: Authorization: Token <token>."
    assert id_msg  # the Indonesian catalogue translates the source strings


# --- a token acting for a staff member stops with that person's access (issue: an ex-agent's
# API token kept working after deactivation) ---------------------------------------------------
def _revoked(caller: Any) -> str:
    r = caller.get(URL)
    assert r.status_code == 401 and r.json()["code"] == "invalid_token", r.content
    client = ApiClient.objects.get(pk=caller.client.pk)
    assert not client.active and client.revoked_at is not None
    return client.revoke_reason


def test_agent_token_stops_when_the_agent_is_deactivated(agent_api: Any, agent: Any) -> None:
    assert agent_api.get(URL).status_code == 200
    agent.is_active = False
    agent.save()  # as the admin's user form saves it
    assert ApiClient.objects.get(pk=agent_api.client.pk).revoke_reason == "staff_deactivated"
    assert _revoked(agent_api) == "staff_deactivated"
    agent.is_active = True
    agent.save()
    assert agent_api.get(URL).status_code == 401  # reactivating the person does not revive it


def test_agent_token_stops_when_the_role_changes(agent_api: Any, agent: Any) -> None:
    profile = agent.staff
    profile.role = "supervisor"
    profile.save()
    assert _revoked(agent_api) == "staff_role_changed"
    profile.role = "agent"
    profile.save()
    assert agent_api.get(URL).status_code == 401


def test_agent_token_stops_when_an_admin_resets_the_password(
    agent_api: Any, agent: Any, admin_user: Any
) -> None:
    """The back office's "change password" form (AdminPasswordChangeForm) on the agent."""
    web = login_as(Client(), admin_user)
    url = f"/admin/auth/user/{agent.pk}/password/"
    r = web.post(url, {"password1": "N3w-secret-pass-77", "password2": "N3w-secret-pass-77"})
    assert r.status_code == 302, r.content[:2000]
    assert _revoked(agent_api) == "staff_password_changed"


def test_a_change_that_bypasses_signals_still_stops_the_token(agent_api: Any, agent: Any) -> None:
    from django.contrib.auth.models import User

    User.objects.filter(pk=agent.pk).update(is_active=False)  # e.g. a bulk script
    assert _revoked(agent_api) == "staff_deactivated"


def test_other_saves_of_the_agent_leave_the_token_alone(agent_api: Any, agent: Any) -> None:
    agent.first_name = "Asep"
    agent.save()
    agent.staff.phone = "+6281234567890"
    agent.staff.save()
    assert agent_api.get(URL).status_code == 200
