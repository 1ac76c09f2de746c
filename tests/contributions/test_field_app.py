"""The field app's server side: the shell and its service worker, device enrolment, the data a
phone keeps offline, and the shell's size budget (docs/field-app.md)."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from contributions.field import views as field_views
from enrollment.api.clients import revoke_api_client
from enrollment.models import ApiClient, FieldDevice, StaffProfile
from enrollment.services import register_participant
from tests.conftest import login_as, nik_for, registration_data

pytestmark = pytest.mark.django_db


def _enrol(client: Client, device_id: str | None = None) -> dict[str, Any]:
    session = client.get("/field/api/session/").json()
    response = client.post(
        "/field/api/enrol/",
        data=json.dumps({"device_id": device_id}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=session["csrf"],
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _token_get(path: str, token: str) -> Any:
    return Client().get(path, HTTP_AUTHORIZATION=f"Token {token}")


@pytest.fixture
def agent_client(agent: Any) -> Client:
    c = Client(enforce_csrf_checks=True)
    login_as(c, agent)
    return c


def test_shell_manifest_and_worker_are_served_without_login() -> None:
    c = Client()
    shell = c.get("/field/")
    assert shell.status_code == 200
    html = shell.content.decode()
    assert 'rel="manifest"' in html and "field/app.js" in html
    assert "<script>" not in html  # CSP: no inline script (the texts are a JSON block)
    manifest = c.get("/field/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert body["scope"] == "/field/" and body["display"] == "standalone"
    assert {i["sizes"] for i in body["icons"]} == {"192x192", "512x512"}
    worker = c.get("/field/sw.js")
    assert worker["Content-Type"].startswith("text/javascript")
    text = worker.content.decode()
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", text).group(1))
    assert precache[:2] == ["/field/?lang=id", "/field/?lang=en"]  # both, for offline use
    assert "Daftarkan pekerja" in c.get("/field/?lang=id").content.decode()
    assert "Register a worker" in c.get("/field/?lang=en").content.decode()
    for url in precache[2:]:
        assert finders.find(url.removeprefix("/static/")), url  # every precached file exists


def test_enrolment_gives_a_token_a_prefix_and_a_key(agent_client: Client, agent: Any) -> None:
    first = _enrol(agent_client)
    assert re.fullmatch(r"F[2-9A-HJKMNP-Z]{4}", first["receipt_prefix"])
    device = FieldDevice.objects.get(public_id=first["device_id"])
    assert device.agent == agent.staff and device.client.scope == ApiClient.Scope.AGENT
    assert _token_get("/field/data/reference.json", first["token"]).status_code == 200

    # The same phone logs in again: a new token (the old one stops), the same prefix and key.
    again = _enrol(agent_client, first["device_id"])
    assert again["device_id"] == first["device_id"]
    assert again["receipt_prefix"] == first["receipt_prefix"]
    assert again["queue_key"] == first["queue_key"]
    assert again["token"] != first["token"]
    assert _token_get("/field/data/reference.json", first["token"]).status_code == 401
    assert _token_get("/field/data/reference.json", again["token"]).status_code == 200
    assert FieldDevice.objects.count() == 1


def test_another_agents_device_id_starts_a_new_device(
    agent_client: Client, other_agent: Any
) -> None:
    mine = _enrol(agent_client)
    other = Client(enforce_csrf_checks=True)
    login_as(other, other_agent)
    theirs = _enrol(other, mine["device_id"])
    assert theirs["device_id"] != mine["device_id"]
    assert theirs["queue_key"] != mine["queue_key"]
    assert theirs["receipt_prefix"] != mine["receipt_prefix"]


def test_a_revoked_phone_needs_a_new_password_login(agent_client: Client, agent: Any) -> None:
    """A lost phone's token revoked by an administrator: the session that phone still holds
    does not enrol it again; a login after the revocation makes a new device."""
    first = _enrol(agent_client)
    client = ApiClient.objects.get(field_device__public_id=first["device_id"])
    revoke_api_client(client)
    assert _token_get("/field/data/reference.json", first["token"]).status_code == 401
    session = agent_client.get("/field/api/session/").json()
    refused = agent_client.post(
        "/field/api/enrol/",
        data=json.dumps({"device_id": first["device_id"]}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=session["csrf"],
    )
    assert refused.status_code == 403 and refused.json()["code"] == "device_revoked"

    fresh = Client(enforce_csrf_checks=True)
    login_as(fresh, agent, with_password=True)  # last_login is now after the revocation
    again = _enrol(fresh, first["device_id"])
    assert again["device_id"] != first["device_id"]
    assert again["queue_key"] == first["queue_key"]  # the agent's key: the old queue opens


def test_the_queue_key_is_the_agents_not_the_devices(
    agent_client: Client, agent: Any, other_agent: Any
) -> None:
    mine = _enrol(agent_client)
    second_phone = _enrol(agent_client)  # no device id: a new device of the same agent
    assert second_phone["device_id"] != mine["device_id"]
    assert second_phone["queue_key"] == mine["queue_key"]
    StaffProfile.objects.filter(pk=agent.staff.pk).update(field_queue_secret="")
    assert _enrol(agent_client, mine["device_id"])["queue_key"] != mine["queue_key"]
    other = Client(enforce_csrf_checks=True)
    login_as(other, other_agent)
    assert _enrol(other)["queue_key"] != mine["queue_key"]


def test_enrolment_needs_an_agent_and_csrf(supervisor: Any, agent: Any) -> None:
    anonymous = Client().get("/field/api/session/").json()
    assert anonymous == {"authenticated": False, "login_url": "/login/?next=/field/"}
    boss = Client()
    login_as(boss, supervisor)
    assert boss.get("/field/api/session/").status_code == 403
    assert boss.post("/field/api/enrol/").status_code == 403
    c = Client(enforce_csrf_checks=True)
    login_as(c, agent)
    assert c.post("/field/api/enrol/", content_type="application/json").status_code == 403


def test_data_endpoints_need_the_device_token(agent_client: Client) -> None:
    for path in (
        "/field/data/reference.json",
        "/field/data/nik-prefixes.json",
        "/field/data/participants.json",
        "/field/data/regions/32.73.json",
    ):
        assert Client().get(path).status_code == 401, path
        assert _token_get(path, "bpu_nothing_here").status_code == 401, path


def test_reference_data_is_the_servers_and_versioned(agent_client: Client) -> None:
    token = _enrol(agent_client)["token"]
    body = _token_get("/field/data/reference.json", token).json()
    rules = body["rules"]
    assert rules["min_age"] == 15 and rules["max_age"] == 65 and rules["due_day"] == 15
    assert 1_000_000 in rules["schedules"][0]["levels"]
    assert {d["sector"] for d in rules["discounts"]} == {"transport", "other"}
    assert rules["messages"]["id"]["nik_format"] != rules["messages"]["en"]["nik_format"]
    assert body["area"]["province"]["code"] == "32"  # the branch's province, not the country
    assert all(r["code"].startswith("32.") for r in body["area"]["regencies"])
    assert body["max_age_hours"] == 72
    again = _token_get("/field/data/reference.json", token).json()
    assert again["version"] == body["version"]  # same content, same version


def test_regions_of_the_agents_area_only(agent_client: Client) -> None:
    token = _enrol(agent_client)["token"]
    bandung = _token_get("/field/data/regions/32.73.json", token)
    assert bandung.status_code == 200
    villages = [v for d in bandung.json()["districts"] for v in d["villages"]]
    assert villages and all(code.startswith("32.73.") for code, _name in villages)
    assert _token_get("/field/data/regions/35.78.json", token).status_code == 404


def test_participants_are_the_agents_own_with_what_the_quote_needs(
    agent_client: Client, agent: Any, other_agent: Any
) -> None:
    mine = register_participant(**registration_data(registered_by=agent.staff))
    register_participant(
        **registration_data(nik=nik_for(serial=2), registered_by=other_agent.staff)
    )
    token = _enrol(agent_client)["token"]
    people = _token_get("/field/data/participants.json", token).json()["participants"]
    assert [p["kpj"] for p in people] == [mine.kpj_number]
    row = people[0]
    assert row["nik"] == mine.nik[:4] + "*" * 10 + mine.nik[-2:]  # masked for an agent
    assert row["income"] == 1_000_000 and row["programmes"] == ["JKK", "JKM"]
    assert row["paid_through"] is None and row["credit"] == 0 and row["sector"] == "other"


def test_shell_fits_the_size_budget() -> None:
    """The app shell - HTML, CSS, JS and icons - at most 150 KB compressed on first load."""
    html = Client().get("/field/").content
    total = len(gzip.compress(html, 9))
    for name in field_views.SHELL_ASSETS:
        path = finders.find(name)
        assert path, name
        with open(path, "rb") as f:
            total += len(gzip.compress(f.read(), 9))
    manifest = Client().get("/field/manifest.webmanifest").content
    total += len(gzip.compress(manifest, 9))
    assert total <= 150 * 1024, total


def test_field_registrations_never_update_an_existing_participant(
    agent_client: Client, agent: Any
) -> None:
    """The phone sends with on_existing=refuse: the agent's own participant registered from
    another phone is refused duplicate_nik (naming the KPJ), not updated from the form."""
    mine = register_participant(**registration_data(registered_by=agent.staff))
    token = _enrol(agent_client)["token"]
    row = {
        "nik": mine.nik,
        "full_name": mine.full_name,
        "birth_date": mine.birth_date.isoformat(),
        "sex": mine.sex,
        "phone": "081299998888",
        "village": mine.village_id,
        "address": "Somewhere else 1",
        "occupation": "petani",
        "declared_income": 1_000_000,
        "consent_data": True,
    }
    body = {"rows": [row], "on_existing": "refuse"}
    response = Client().post(
        "/api/v1/participants/bulk/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_IDEMPOTENCY_KEY="field-1",
    )
    assert response.status_code == 200, response.content
    result = response.json()["results"][0]
    assert result["result"] == "error" and result["errors"][0]["code"] == "duplicate_nik"
    assert mine.kpj_number in result["errors"][0]["message"]
    mine.refresh_from_db()
    assert mine.address != "Somewhere else 1" and mine.phone != "+6281299998888"
