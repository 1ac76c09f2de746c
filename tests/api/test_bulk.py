"""Bulk upsert with Idempotency-Key."""

from __future__ import annotations

from typing import Any

import pytest

from enrollment.models import IdempotencyRecord, Participant
from tests.api.conftest import next_nik, reg_body

URL = "/api/v1/participants/bulk/"


def test_bulk_reports_created_updated_unchanged_error(partner_api: Any) -> None:
    existing = reg_body(nik=next_nik())
    changed = reg_body(nik=next_nik())
    for body in (existing, changed):
        assert partner_api.post("/api/v1/participants/", body).status_code == 201
    rows = [
        reg_body(nik=next_nik()),
        existing,
        {**changed, "address": "Jl. Baru 9"},
        reg_body(nik=next_nik(), phone="123"),
        "not an object",
        {**reg_body(nik=next_nik()), "shoe": 1},
    ]
    r = partner_api.post(URL, {"rows": rows}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [x["result"] for x in results] == [
        "created",
        "unchanged",
        "updated",
        "error",
        "error",
        "error",
    ]
    assert results[3]["errors"][0]["code"] == "phone_invalid"
    assert results[4]["errors"][0]["code"] == "row_not_object"
    assert results[5]["errors"][0]["code"] == "unknown_field"
    assert "*" in results[0]["nik"]  # masked for a partner
    assert r.json()["summary"] == {"created": 1, "updated": 1, "unchanged": 1, "error": 3}
    assert Participant.objects.get(pk=results[2]["id"]).address == "Jl. Baru 9"


def test_replay_returns_same_result_without_writing(partner_api: Any) -> None:
    body = {"rows": [reg_body(nik=next_nik())]}
    first = partner_api.post(URL, body, headers={"Idempotency-Key": "same"})
    count = Participant.objects.count()
    again = partner_api.post(URL, body, headers={"Idempotency-Key": "same"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Participant.objects.count() == count == 1


def test_same_key_different_body_is_422(partner_api: Any) -> None:
    partner_api.post(URL, {"rows": [reg_body(nik=next_nik())]}, headers={"Idempotency-Key": "k"})
    r = partner_api.post(
        URL, {"rows": [reg_body(nik=next_nik())]}, headers={"Idempotency-Key": "k"}
    )
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert Participant.objects.count() == 1


def test_key_is_per_client(partner_api: Any, admin_api: Any) -> None:
    partner_api.post(URL, {"rows": [reg_body(nik=next_nik())]}, headers={"Idempotency-Key": "k"})
    r = admin_api.post(URL, {"rows": [reg_body(nik=next_nik())]}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 200 and r.json()["summary"]["created"] == 1


def test_missing_or_bad_key_is_400(partner_api: Any) -> None:
    r = partner_api.post(URL, {"rows": [reg_body()]})
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_required"
    r = partner_api.post(URL, {"rows": [reg_body()]}, headers={"Idempotency-Key": "x" * 200})
    assert r.json()["code"] == "idempotency_key_invalid"
    assert Participant.objects.count() == 0


def test_1001_rows_is_400_and_writes_nothing(partner_api: Any) -> None:
    rows = [reg_body(nik=next_nik()) for _ in range(1001)]
    r = partner_api.post(URL, {"rows": rows}, headers={"Idempotency-Key": "big"})
    assert r.status_code == 400 and r.json()["code"] == "too_many_rows"
    assert Participant.objects.count() == 0 and IdempotencyRecord.objects.count() == 0


def test_empty_or_wrong_shape_is_400(partner_api: Any) -> None:
    for body in ({"rows": []}, {"rows": "x"}, {"row": []}, []):
        r = partner_api.post(URL, body, headers={"Idempotency-Key": "shape"})
        assert r.status_code == 400, body
        assert r.json()["code"] == "validation_error"


def test_existing_nik_outside_scope_is_a_row_error(partner_api: Any, admin_api: Any) -> None:
    body = reg_body(nik=next_nik())
    admin_api.post("/api/v1/participants/", body)
    r = partner_api.post(URL, {"rows": [body]}, headers={"Idempotency-Key": "o"})
    assert r.json()["results"][0]["errors"][0]["code"] == "duplicate_nik"


def test_identity_change_is_a_row_error(partner_api: Any) -> None:
    body = reg_body(nik=next_nik())
    partner_api.post("/api/v1/participants/", body)
    r = partner_api.post(
        URL, {"rows": [{**body, "full_name": "Someone Else"}]}, headers={"Idempotency-Key": "i"}
    )
    assert r.json()["results"][0]["errors"][0]["code"] == "field_not_changeable"


def test_channel_client_may_not_bulk(channel_api: Any) -> None:
    r = channel_api.post(URL, {"rows": [reg_body()]}, headers={"Idempotency-Key": "c"})
    assert r.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_write_once(tx_refdata: Any, make_caller: Any) -> None:
    import threading

    from django.db import connection

    from enrollment.models import Partner

    partner = Partner.objects.create(code="CF2", name="ComboFit 2", kind="bundle")
    api = make_caller("partner", partner=partner)
    body = {"rows": [reg_body(nik=next_nik()) for _ in range(20)]}
    results: list[Any] = []
    start = threading.Barrier(2)

    def send() -> None:
        try:
            start.wait(5)
            r = api.post(URL, body, headers={"Idempotency-Key": "race"})
            results.append((r.status_code, r.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [code for code, _ in results] == [200, 200]
    assert results[0][1] == results[1][1]
    assert Participant.objects.count() == 20
