"""Payments, sponsor batches, ledger through the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contributions.models import LedgerEntry, Payment
from tests.api.conftest import next_nik, reg_body

URL = "/api/v1/payments/"


@pytest.fixture
def person(admin_api: Any) -> dict[str, Any]:
    r = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    assert r.status_code == 201, r.content
    return r.json()


def due(api: Any, months: int = 1) -> int:
    return int(api.get("/api/v1/quotes/", {"income": 1_000_000, "months": months}).json()["total"])


def pay_body(person: dict[str, Any], amount: int, **kw: Any) -> dict[str, Any]:
    body = {
        "kpj_number": person["kpj_number"],
        "amount": amount,
        "months": 1,
        "reference": "TRX-1",
        "paid_at": timezone.now().isoformat(),
        "payer": "participant",
    }
    body.update(kw)
    return body


def test_post_payment_201_then_replay_200_then_conflict_409(
    channel_api: Any, person: dict[str, Any], admin_api: Any
) -> None:
    amount = due(admin_api)
    body = pay_body(person, amount)
    r = channel_api.post(URL, body)
    assert r.status_code == 201, r.content
    p = r.json()
    assert set(p) >= {"id", "kpj_number", "amount", "months", "channel", "reference", "paid_at"}
    assert p["channel"] == "bank" and p["payer"] == "participant"
    again = channel_api.post(URL, body)
    assert again.status_code == 200 and again.json() == p
    r = channel_api.post(URL, {**body, "months": 2, "amount": due(admin_api, 2)})
    assert r.status_code == 409 and r.json()["code"] == "reference_conflict"
    assert Payment.objects.count() == 1 and LedgerEntry.objects.count() == 1
    shown = admin_api.get(f"/api/v1/participants/{person['id']}/").json()
    assert shown["status"] == "active" and shown["paid_through"]
    ledger = admin_api.get(f"/api/v1/participants/{person['id']}/ledger/").json()["results"]
    assert [e["kind"] for e in ledger] == ["payment"] and ledger[0]["amount"] == amount


def test_amount_mismatch_names_expected(channel_api: Any, person: dict[str, Any]) -> None:
    r = channel_api.post(URL, pay_body(person, 1))
    assert r.status_code == 400
    assert r.json()["code"] == "amount_mismatch" and r.json()["expected"] > 1


def test_unknown_kpj_is_404(channel_api: Any, refdata: Any) -> None:
    r = channel_api.post(URL, pay_body({"kpj_number": "00000000000"}, 16_800))
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"


def test_payment_needs_a_participant_key(channel_api: Any, refdata: Any) -> None:
    body = pay_body({"kpj_number": ""}, 16_800)
    del body["kpj_number"]
    assert channel_api.post(URL, body).json()["code"] == "participant_required"


def test_future_and_bad_months(channel_api: Any, person: dict[str, Any]) -> None:
    future = (timezone.now() + timezone.timedelta(days=2)).isoformat()
    assert channel_api.post(URL, pay_body(person, 16_800, paid_at=future)).json()["code"] == (
        "paid_at_future"
    )
    assert channel_api.post(URL, pay_body(person, 16_800, months=13)).json()["code"] == (
        "months_out_of_range"
    )


def test_channel_client_cannot_post_as_other_channel(
    channel_api: Any, person: dict[str, Any]
) -> None:
    r = channel_api.post(URL, pay_body(person, 16_800, channel="retail"))
    assert r.status_code == 400 and r.json()["code"] == "channel_not_allowed"


def test_partner_pays_only_in_scope_and_then_sees_sponsored(
    sponsor_api: Any, partner_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    r = partner_api.post(URL, pay_body(person, due(admin_api)))
    assert r.status_code == 404  # not its participant
    mine = partner_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    body = pay_body(mine, due(admin_api), reference="P-1")
    del body["payer"]  # a partner pays as the sponsor unless it says otherwise
    r = partner_api.post(URL, body)
    assert r.status_code == 201 and r.json()["channel"] == "partner"
    assert r.json()["payer"] == "sponsor"


def test_agent_payment_is_collected_by_the_agent(
    agent_api: Any, agent: Any, admin_api: Any
) -> None:
    mine = agent_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    r = agent_api.post(URL, pay_body(mine, due(admin_api), reference="CASH-1", payer=None))
    assert r.status_code == 400  # payer null is a type error
    body = pay_body(mine, due(admin_api), reference="CASH-1")
    del body["payer"]
    r = agent_api.post(URL, body)
    assert r.status_code == 201, r.content
    assert Payment.objects.get(pk=r.json()["id"]).collected_by == agent.staff


# --- batches --------------------------------------------------------------------------------
def test_sponsor_batch_201_replay_200_and_bad_rows(
    sponsor_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    mine = sponsor_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    other = sponsor_api.post(
        "/api/v1/participants/", reg_body(nik=next_nik(), phone="081234567891")
    ).json()
    body = {
        "reference": "GNL-2026-01",
        "paid_at": timezone.now().isoformat(),
        "rows": [
            {"kpj_number": mine["kpj_number"], "months": 1},
            {"nik": other["nik"], "months": 2},
        ],
    }
    r = sponsor_api.post("/api/v1/payments/batches/", body)
    assert r.status_code == 201, r.content
    assert r.json()["row_count"] == 2 and r.json()["sponsor"] == "GNL"
    assert sponsor_api.post("/api/v1/payments/batches/", body).status_code == 200
    bad = {**body, "reference": "GNL-2", "rows": [{"kpj_number": "00000000000", "months": 1}]}
    r = sponsor_api.post("/api/v1/payments/batches/", bad)
    assert r.status_code == 400 and r.json()["code"] == "batch_invalid"
    assert r.json()["errors"][0] == {
        "field": "rows.0",
        "code": "participant_unknown",
        "message": r.json()["errors"][0]["message"],
    }
    conflict = {**body, "rows": body["rows"][:1]}
    assert sponsor_api.post("/api/v1/payments/batches/", conflict).status_code == 409


def test_a_sponsor_batch_does_not_take_anyone_into_the_partners_scope(
    sponsor_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    """The probe: a batch naming any KPJ succeeded; the partner then read the full NIK, phone
    and address and could PATCH the phone; a wrong total revealed the contribution."""
    body = {
        "reference": "HARVEST-1",
        "paid_at": timezone.now().isoformat(),
        "total_amount": 1,
        "rows": [{"kpj_number": person["kpj_number"], "months": 1}],
    }
    r = sponsor_api.post("/api/v1/payments/batches/", body)
    nobody = sponsor_api.post(
        "/api/v1/payments/batches/",
        {**body, "rows": [{"kpj_number": "00000000000", "months": 1}]},
    )
    assert r.status_code == nobody.status_code == 400
    assert r.json() == nobody.json()  # the same answer as for a number that does not exist
    assert "Rp" not in r.content.decode()  # no contribution amount leaks
    assert not Payment.objects.exists()
    url = f"/api/v1/participants/{person['id']}/"
    assert sponsor_api.get(url).status_code == 404
    assert sponsor_api.patch(url, {"phone": "081299999999"}).status_code == 404
    assert sponsor_api.get("/api/v1/participants/").json()["results"] == []
    single = sponsor_api.post(URL, pay_body(person, due(admin_api), reference="S-1"))
    assert single.status_code == 404 and single.json()["code"] == "participant_unknown"


def test_after_consent_the_partner_pays_but_still_cannot_read(
    sponsor_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    from contributions.sponsorship import grant_sponsor_consent
    from enrollment.models import Participant

    grant_sponsor_consent(
        participant=Participant.objects.get(pk=person["id"]),
        sponsor=sponsor_api.client.partner,
        method="in_person",
        user=None,
        note="consent form signed at the branch",
    )
    body = {
        "reference": "GNL-OK",
        "paid_at": timezone.now().isoformat(),
        "rows": [{"kpj_number": person["kpj_number"], "months": 1}],
    }
    r = sponsor_api.post("/api/v1/payments/batches/", body)
    assert r.status_code == 201, r.content
    url = f"/api/v1/participants/{person['id']}/"
    assert sponsor_api.get(url).status_code == 404
    assert sponsor_api.patch(url, {"phone": "081299999999"}).status_code == 404
    assert sponsor_api.get("/api/v1/participants/").json()["results"] == []
    synced = sponsor_api.get("/api/v1/sync/payments/").json()["results"]
    assert [p["kpj_number"] for p in synced] == [person["kpj_number"]]  # its own payment only
    assert set(synced[0]) >= {"amount", "months"} and "full_name" not in synced[0]


def test_batch_scope(channel_api: Any, admin_api: Any, person: dict[str, Any]) -> None:
    body = {
        "reference": "B-1",
        "paid_at": timezone.now().isoformat(),
        "rows": [{"kpj_number": person["kpj_number"], "months": 1}],
    }
    assert channel_api.post("/api/v1/payments/batches/", body).status_code == 403
    assert admin_api.post("/api/v1/payments/batches/", body).json()["code"] == "sponsor_unknown"
    assert admin_api.post("/api/v1/payments/batches/", {**body, "sponsor": "GNL"}).status_code in (
        201,
        400,
    )


def test_payment_dates_outside_the_window_are_400_never_500(
    channel_api: Any, admin_api: Any, person: dict[str, Any]
) -> None:
    amount = due(admin_api)
    in_a_week = (timezone.now() + timezone.timedelta(days=7)).isoformat()
    for n, (paid_at, code) in enumerate(
        [
            ("0001-01-01T00:00:00Z", "paid_at_too_old"),
            ("0001-01-01T00:00:00+09:00", "overflow"),  # before year 1 once in local time
            ("1970-01-01T00:00:00+07:00", "paid_at_too_old"),
            ("2026-01-01T10:00:00", "paid_at_too_old"),  # older than PAYMENT_MAX_AGE_DAYS
            (in_a_week, "paid_at_future"),
            ("9999-12-31T23:59:59Z", "overflow"),
        ]
    ):
        r = channel_api.post(URL, pay_body(person, amount, paid_at=paid_at, reference=f"W-{n}"))
        assert r.status_code == 400, (paid_at, r.content)
        body = r.json()
        codes = [body["code"], *(e["code"] for e in body["errors"] if e["field"] == "paid_at")]
        assert code in codes, (paid_at, body)
    assert not Payment.objects.exists()
    synced = admin_api.get("/api/v1/sync/payments/").json()
    assert synced["results"] == []
