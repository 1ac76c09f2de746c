"""A payment channel's look-up: a masked name and the amount due, nothing else, within a daily
limit that alerts the administrators when reached (issue: a channel token could enumerate every
participant's name, phone, birth date and address by counting through KPJ numbers)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from enrollment.api.lookups import lookups_today
from enrollment.models import ApiClient, SecurityAlert
from tests.api.conftest import next_nik, reg_body

URL = "/api/v1/dues/"
PERSONAL = ("full_name", "phone", "birth_date", "address", "nik", "email", "village")


@pytest.fixture
def person(admin_api: Any) -> dict[str, Any]:
    r = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    assert r.status_code == 201, r.content
    return r.json()


def test_a_channel_sees_a_masked_name_and_the_amount_due(
    channel_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    r = channel_api.get(URL, {"kpj": person["kpj_number"]})
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"kpj_number", "name", "months_due_now", "months", "first_month", "amount"}
    assert body["name"] == "B*** S***"  # Budi Santoso
    quote = admin_api.get("/api/v1/quotes/", {"income": 1_000_000, "months": body["months"]})
    assert body["amount"] == quote.json()["total"] and body["months"] >= 1
    text = r.content.decode()
    assert not any(str(person[f]) in text for f in PERSONAL if person.get(f))
    three = channel_api.get(URL, {"nik": person["nik"], "months": 3}).json()
    assert three["months"] == 3 and three["kpj_number"] == person["kpj_number"]


def test_unknown_numbers_and_bad_months_are_clear_errors(
    channel_api: Any, person: dict[str, Any]
) -> None:
    assert channel_api.get(URL).json()["code"] == "participant_required"
    r = channel_api.get(URL, {"kpj": "00000000000"})
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"
    r = channel_api.get(URL, {"kpj": person["kpj_number"], "months": 13})
    assert r.status_code == 400 and r.json()["code"] == "months_out_of_range"
    r = channel_api.get(URL, {"kpj": person["kpj_number"], "months": "x"})
    assert r.status_code == 400 and r.json()["code"] == "months_invalid"


def test_a_partner_looks_up_only_those_it_may_pay_for(
    partner_api: Any, person: dict[str, Any]
) -> None:
    r = partner_api.get(URL, {"kpj": person["kpj_number"]})
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"
    mine = partner_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    assert partner_api.get(URL, {"kpj": mine["kpj_number"]}).status_code == 200


def test_the_daily_limit_refuses_and_alerts_the_administrators_once(
    channel_api: Any, person: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ADMINS = [("security", "security@bpjs.example")]
    ApiClient.objects.filter(pk=channel_api.client.pk).update(daily_lookup_limit=3)
    codes = [
        channel_api.get(URL, {"kpj": k}).status_code
        for k in (person["kpj_number"], "00000000000", "10000000018")
    ]
    assert codes == [200, 404, 404]  # misses count too: that is what an enumeration makes
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            r = channel_api.get(URL, {"kpj": person["kpj_number"]})
            assert r.status_code == 429 and r.json()["code"] == "lookup_limit_reached"
            assert r.json()["limit"] == 3
    assert lookups_today(channel_api.client) == 6
    alert = SecurityAlert.objects.get()
    assert (alert.kind, alert.client_id) == ("lookup_limit", channel_api.client.pk)
    assert [m.to for m in mail.outbox] == [["security@bpjs.example"]]  # once, not per refusal
    assert channel_api.client.name in mail.outbox[0].body


def test_payments_that_probe_count_against_the_limit(
    channel_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    """A payment naming a number nobody holds, or the wrong amount (whose error tells the
    amount due), answers what a look-up answers: it counts. A good payment does not."""
    from django.utils import timezone

    ApiClient.objects.filter(pk=channel_api.client.pk).update(daily_lookup_limit=2)
    body = {"amount": 1, "months": 1, "paid_at": timezone.now().isoformat(), "payer": "participant"}
    post = channel_api.post
    assert (
        post("/api/v1/payments/", {**body, "kpj_number": "00000000000", "reference": "P1"}).json()[
            "code"
        ]
        == "participant_unknown"
    )
    r = post("/api/v1/payments/", {**body, "kpj_number": person["kpj_number"], "reference": "P2"})
    assert r.json()["code"] == "amount_mismatch"
    assert lookups_today(channel_api.client) == 2
    r = post("/api/v1/payments/", {**body, "kpj_number": "00000000000", "reference": "P3"})
    assert r.status_code == 429 and r.json()["code"] == "lookup_limit_reached"


def test_other_scopes_are_not_counted(admin_api: Any, person: dict[str, Any]) -> None:
    for _ in range(3):
        assert admin_api.get(URL, {"kpj": person["kpj_number"]}).status_code == 200
    assert lookups_today(admin_api.client) is None
