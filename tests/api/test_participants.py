"""Participants: register, list, read, change; errors; scope rules; bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from enrollment.models import Participant
from tests.api.conftest import next_nik, reg_body

URL = "/api/v1/participants/"


# --- registration ---------------------------------------------------------------------------
def test_register_returns_201_with_the_contract_fields(admin_api: Any) -> None:
    r = admin_api.post(URL, reg_body(programmes=["JKK", "JKM", "JHT"]))
    assert r.status_code == 201, r.content
    p = r.json()
    assert set(p) >= {
        "id",
        "nik",
        "kpj_number",
        "full_name",
        "birth_date",
        "sex",
        "phone",
        "email",
        "village",
        "address",
        "occupation",
        "declared_income",
        "programmes",
        "channel",
        "partner",
        "consent_data",
        "consent_reminders",
        "status",
        "paid_through",
        "registered_at",
        "updated_at",
    }
    assert len(p["kpj_number"]) == 11 and p["status"] in ("active", "grace", "lapsed")
    assert p["programmes"] == ["JKK", "JKM", "JHT"] and p["phone"] == "+6281234567890"
    assert p["birth_date"] == "1990-05-17" and p["village"] == "32.73.05.1001"


def test_register_400_lists_per_field_codes(admin_api: Any) -> None:
    r = admin_api.post(URL, reg_body(phone="12", declared_income=1_100_000, sex="F"))
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "validation_error"
    codes = {(e["field"], e["code"]) for e in body["errors"]}
    assert ("phone", "phone_invalid") in codes
    assert ("declared_income", "income_not_level") in codes
    assert ("nik", "nik_sex_mismatch") in codes
    assert Participant.objects.count() == 0


def test_duplicate_nik_is_409(admin_api: Any) -> None:
    assert admin_api.post(URL, reg_body()).status_code == 201
    r = admin_api.post(URL, reg_body())
    assert r.status_code == 409
    assert r.json()["code"] == "duplicate_nik"


def test_a_duplicate_held_outside_the_scope_names_no_kpj_or_branch(
    admin_api: Any, partner_api: Any, agent: Any
) -> None:
    """The answer to registering a NIK someone else holds says it cannot be registered, and
    for a client who may not see that participant nothing more (not its KPJ, not its branch)."""
    from enrollment.services import register_participant
    from tests.conftest import registration_data

    theirs = register_participant(**registration_data(nik=next_nik(), registered_by=agent.staff))
    r = partner_api.post(URL, reg_body(nik=theirs.nik))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_nik"
    text = r.content.decode()
    assert theirs.kpj_number not in text and "Bandung" not in text
    bulk = partner_api.post(
        f"{URL}bulk/", {"rows": [reg_body(nik=theirs.nik)]}, headers={"Idempotency-Key": "d-1"}
    )
    assert bulk.json()["results"][0]["errors"][0]["code"] == "duplicate_nik"
    assert theirs.kpj_number not in bulk.content.decode()
    mine = admin_api.post(URL, reg_body(nik=theirs.nik))  # an admin sees everyone: it may know
    assert mine.status_code == 409 and theirs.kpj_number in mine.content.decode()


def test_partner_registration_is_marked_as_partner(partner_api: Any) -> None:
    r = partner_api.post(URL, reg_body())
    assert r.status_code == 201
    assert r.json()["partner"] == "COMBOFIT" and r.json()["channel"] == "partner"


def test_agent_registration_acts_as_the_agent(agent_api: Any, agent: Any) -> None:
    r = agent_api.post(URL, reg_body())
    assert r.status_code == 201
    assert Participant.objects.get(pk=r.json()["id"]).registered_by == agent.staff


def test_non_admin_may_not_set_channel_or_partner(partner_api: Any) -> None:
    r = partner_api.post(URL, reg_body(channel="branch"))
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "field_not_allowed"


def test_channel_client_may_not_register(channel_api: Any) -> None:
    r = channel_api.post(URL, reg_body())
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"


# --- bad input ------------------------------------------------------------------------------
def test_unknown_field_is_400(admin_api: Any) -> None:
    r = admin_api.post(URL, reg_body(shoe_size=42))
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert (error["field"], error["code"]) == ("shoe_size", "unknown_field")


@pytest.mark.parametrize(
    "field,value",
    [
        ("declared_income", "1000000"),
        ("declared_income", 1_000_000.0),
        ("consent_data", "true"),
        ("nik", 3273051705900001),
        ("birth_date", "17-05-1990"),
        ("programmes", "JKK"),
    ],
)
def test_wrong_types_are_400(admin_api: Any, field: str, value: Any) -> None:
    r = admin_api.post(URL, reg_body(**{field: value}))
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == field
    assert Participant.objects.count() == 0


@pytest.mark.parametrize(
    "nik",
    [
        "３２７３０５１７０５９００００１",  # full-width
        "٣٢٧٣٠٥١٧٠٥٩٠٠٠٠١",  # Arabic-Indic
        "3273 0517 0590 0001",
        "32730517059000O1",  # letter O
    ],
)
def test_look_alike_digits_in_nik_are_400(admin_api: Any, nik: str) -> None:
    r = admin_api.post(URL, reg_body(nik=nik))
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "nik"
    assert r.json()["errors"][0]["code"].startswith("nik_")


def test_malformed_json_is_400(admin_api: Any) -> None:
    r = admin_api.post(URL, b'{"nik": "1",')
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"


def test_nan_and_duplicate_keys_are_malformed(admin_api: Any) -> None:
    assert admin_api.post(URL, b'{"declared_income": NaN}').json()["code"] == "malformed_json"
    assert admin_api.post(URL, b'{"nik": "1", "nik": "2"}').json()["code"] == "malformed_json"


def test_body_not_an_object_is_400(admin_api: Any) -> None:
    r = admin_api.post(URL, [1, 2])
    assert r.status_code == 400 and r.json()["code"] == "validation_error"


def test_wrong_content_type_is_415(admin_api: Any) -> None:
    r = admin_api.http.post(
        URL,
        "nik=1",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Token {admin_api.token}",
    )
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"


def test_huge_body_is_413(admin_api: Any) -> None:
    r = admin_api.post(URL, json.dumps(reg_body(address="x" * 3_000_000)))
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    assert Participant.objects.count() == 0


def test_long_name_is_a_field_error(admin_api: Any) -> None:
    r = admin_api.post(URL, reg_body(full_name="A" * 150))
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "name_too_long"


# --- list, filters, search, pagination ------------------------------------------------------
@pytest.fixture
def three(admin_api: Any) -> list[dict[str, Any]]:
    out = []
    for occupation in ("petani", "petani", "nelayan"):
        r = admin_api.post(URL, reg_body(nik=next_nik(), occupation=occupation))
        assert r.status_code == 201, r.content
        out.append(r.json())
    return out


def test_list_filters_and_search(admin_api: Any, three: list[dict[str, Any]]) -> None:
    assert len(admin_api.get(URL, {"occupation": "nelayan"}).json()["results"]) == 1
    assert len(admin_api.get(URL, {"province": "32"}).json()["results"]) == 3
    assert len(admin_api.get(URL, {"province": "35"}).json()["results"]) == 0
    assert len(admin_api.get(URL, {"regency": "32.73"}).json()["results"]) == 3
    kpj = three[0]["kpj_number"]
    found = admin_api.get(URL, {"search": kpj}).json()["results"]
    assert [p["kpj_number"] for p in found] == [kpj]
    assert len(admin_api.get(URL, {"search": three[1]["nik"]}).json()["results"]) == 1
    statuses = {p["status"] for p in three}
    status = statuses.pop()
    assert len(admin_api.get(URL, {"status": status}).json()["results"]) >= 1
    assert admin_api.get(URL, {"status": "sleeping"}).json()["code"] == "status_invalid"


def test_list_filter_by_partner_and_agent(
    partner_api: Any, agent_api: Any, admin_api: Any, agent: Any
) -> None:
    partner_api.post(URL, reg_body(nik=next_nik()))
    agent_api.post(URL, reg_body(nik=next_nik()))
    assert len(admin_api.get(URL, {"partner": "COMBOFIT"}).json()["results"]) == 1
    assert len(admin_api.get(URL, {"agent": "A-agent_bdg"}).json()["results"]) == 1


def test_cursor_pagination_walks_everything_once(
    admin_api: Any, three: list[dict[str, Any]]
) -> None:
    seen: list[int] = []
    r = admin_api.get(URL, {"page_size": 2}).json()
    seen += [p["id"] for p in r["results"]]
    while r["next"]:
        r = admin_api.http.get(r["next"], HTTP_AUTHORIZATION=f"Token {admin_api.token}").json()
        seen += [p["id"] for p in r["results"]]
    assert sorted(seen) == sorted(p["id"] for p in three) and len(seen) == 3


def test_bad_cursor_and_page_size_are_400(admin_api: Any) -> None:
    assert admin_api.get(URL, {"cursor": "garbage!!"}).json()["code"] == "invalid_cursor"
    assert admin_api.get(URL, {"page_size": "0"}).json()["code"] == "page_size_invalid"


def test_nik_is_masked_in_lists_unless_admin(admin_api: Any, partner_api: Any) -> None:
    nik = next_nik()
    partner_api.post(URL, reg_body(nik=nik))
    listed = partner_api.get(URL).json()["results"][0]["nik"]
    assert listed != nik and "*" in listed
    assert admin_api.get(URL).json()["results"][0]["nik"] == nik
    pk = partner_api.get(URL).json()["results"][0]["id"]
    assert partner_api.get(f"{URL}{pk}/").json()["nik"] == nik


# --- scope ------------------------------------------------------------------------------------
def test_partner_sees_only_its_participants(
    partner_api: Any, sponsor_api: Any, admin_api: Any
) -> None:
    mine = partner_api.post(URL, reg_body(nik=next_nik())).json()
    other = admin_api.post(URL, reg_body(nik=next_nik())).json()
    assert [p["id"] for p in partner_api.get(URL).json()["results"]] == [mine["id"]]
    assert partner_api.get(f"{URL}{other['id']}/").status_code == 404
    assert partner_api.get(f"{URL}{other['id']}/").json()["code"] == "not_found"
    assert sponsor_api.get(f"{URL}{mine['id']}/").status_code == 404
    assert partner_api.patch(f"{URL}{other['id']}/", {"address": "x"}).status_code == 404
    assert partner_api.get(f"{URL}{other['id']}/ledger/").status_code == 404


def test_agent_sees_only_its_registrations(
    agent_api: Any, make_caller: Any, other_agent: Any, admin_api: Any
) -> None:
    mine = agent_api.post(URL, reg_body(nik=next_nik())).json()
    theirs_api = make_caller("agent", agent=other_agent.staff)
    theirs = theirs_api.post(URL, reg_body(nik=next_nik(), village="35.78.01.1001")).json()
    assert "id" in theirs, theirs
    assert [p["id"] for p in agent_api.get(URL).json()["results"]] == [mine["id"]]
    assert agent_api.get(f"{URL}{theirs['id']}/").status_code == 404


def test_channel_reads_no_participant_record(channel_api: Any, admin_api: Any) -> None:
    """A channel token read name, phone, birth date and address by KPJ (the probe harvested
    60 participants in 3 s); it now reads no participant record at all (dues: test_dues.py)."""
    p = admin_api.post(URL, reg_body()).json()
    for params in ({}, {"kpj": p["kpj_number"]}, {"nik": p["nik"]}, {"search": p["nik"]}):
        r = channel_api.get(URL, params)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", params
        assert p["full_name"] not in r.content.decode()
    assert channel_api.get(f"{URL}{p['id']}/").status_code == 404
    assert channel_api.get(f"{URL}{p['id']}/ledger/").status_code == 404
    assert channel_api.get("/api/v1/sync/participants/").status_code == 403


def test_admin_reads_everything(admin_api: Any, partner_api: Any, agent_api: Any) -> None:
    partner_api.post(URL, reg_body(nik=next_nik()))
    agent_api.post(URL, reg_body(nik=next_nik()))
    assert len(admin_api.get(URL).json()["results"]) == 2


def test_unknown_id_is_404(admin_api: Any) -> None:
    assert admin_api.get(f"{URL}999999999/").status_code == 404


# --- changes --------------------------------------------------------------------------------
def test_patch_changes_allowed_fields(admin_api: Any) -> None:
    p = admin_api.post(URL, reg_body()).json()
    r = admin_api.patch(
        f"{URL}{p['id']}/",
        {
            "phone": "+62 812 9999 0000",
            "address": "Jl. Mawar 1",
            "occupation": "nelayan",
            "declared_income": 1_200_000,
            "programmes": ["JKK", "JKM", "JHT"],
            "consent_reminders": True,
        },
    )
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["phone"] == "+6281299990000" and out["occupation"] == "nelayan"
    assert out["declared_income"] == 1_200_000 and out["programmes"] == ["JKK", "JKM", "JHT"]
    assert out["consent_reminders"] is True


@pytest.mark.parametrize(
    "field,value", [("nik", "3273051705900002"), ("birth_date", "1990-01-01"), ("sex", "F")]
)
def test_patch_refuses_identity_fields(admin_api: Any, field: str, value: str) -> None:
    p = admin_api.post(URL, reg_body()).json()
    r = admin_api.patch(f"{URL}{p['id']}/", {field: value})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "field": field,
        "code": "field_not_changeable",
        "message": r.json()["errors"][0]["message"],
    }


def test_patch_domain_error_codes(admin_api: Any) -> None:
    p = admin_api.post(URL, reg_body()).json()
    r = admin_api.patch(f"{URL}{p['id']}/", {"declared_income": 1_100_000})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "income_not_level"
    r = admin_api.patch(f"{URL}{p['id']}/", {"consent_data": False})
    assert r.json()["code"] == "consent_required"


def test_ledger_is_paginated(admin_api: Any) -> None:
    p = admin_api.post(URL, reg_body()).json()
    r = admin_api.get(f"{URL}{p['id']}/ledger/")
    assert r.status_code == 200 and r.json()["results"] == []


def test_nul_characters_are_400_not_500(admin_api: Any) -> None:
    r = admin_api.get(URL, {"search": "a\x00b"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_character"
    r = admin_api.post(URL, reg_body(full_name="Budi\u0000"))
    assert r.status_code == 400 and r.json()["code"] == "invalid_character"


def test_unknown_api_path_is_json_404(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/participants/-5/")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
