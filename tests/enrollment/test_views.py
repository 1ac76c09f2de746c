"""Browser pages through Django's test client: forms, scope (404 outside it), i18n, bad input."""

from typing import Any

import pytest
from django.test import Client

from enrollment.models import Participant
from tests.conftest import login_as, nik_for, password_login

pytestmark = pytest.mark.usefixtures("refdata")


def client_for(user: Any, language: str = "en") -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE=language)
    login_as(c, user)
    return c


def form_data(**overrides: Any) -> dict[str, Any]:
    from uuid import uuid4

    data = {
        "nik": nik_for(),
        "full_name": "Budi Santoso",
        "birth_date": "1990-05-17",
        "sex": "M",
        "phone": "081234567890",
        "province": "32",
        "regency": "32.73",
        "district": "32.73.05",
        "village": "32.73.05.1001",
        "address": "Jl. Melati No. 5",
        "occupation": "petani",
        "declared_income": "1000000",
        "language": "id",
        "consent_data": "on",
        "consent_reminders": "on",
        "client_token": str(uuid4()),
    }
    data.update(overrides)
    return data


def test_login_required() -> None:
    response = Client().get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_agent_registers_and_sees_kpj_and_monthly_amount(agent: Any) -> None:
    c = client_for(agent)
    response = c.post("/register/", form_data(), follow=True)
    assert response.status_code == 200
    p = Participant.objects.get()
    assert p.registered_by == agent.staff and p.branch == agent.staff.branch
    assert p.channel == "agent"
    body = response.content.decode()
    assert p.kpj_number in body
    from django.utils import timezone

    from contributions.rates import quote_contribution

    monthly = quote_contribution(
        declared_income=1_000_000,
        programmes=["JKK", "JKM"],
        months=1,
        first_month=timezone.localdate(),
        sector="other",
    ).monthly
    assert monthly in (16_800, 8_400)  # 8,400 while PP 50/2025's discount applies
    assert f"{monthly:,}" in body


def test_form_shows_specific_errors_and_keeps_nothing(agent: Any) -> None:
    c = client_for(agent)
    response = c.post("/register/", form_data(nik="12345", phone="999"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "exactly 16 digits" in body
    assert "Indonesian mobile number" in body
    assert Participant.objects.count() == 0


def test_tampered_agent_field_is_ignored(agent: Any, other_agent: Any) -> None:
    c = client_for(agent)
    c.post("/register/", form_data(registered_by=other_agent.staff.pk, branch="SBY"))
    assert Participant.objects.get().registered_by == agent.staff


def test_double_submitted_form_registers_once(agent: Any) -> None:
    c = client_for(agent)
    data = form_data()
    first = c.post("/register/", data)
    second = c.post("/register/", data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Participant.objects.count() == 1


def test_three_megabyte_name_gets_a_clear_400(agent: Any) -> None:
    c = client_for(agent)
    response = c.post("/register/", form_data(full_name="A" * 3_000_000))
    assert response.status_code == 400
    assert "too much data" in response.content.decode()
    assert Participant.objects.count() == 0


def test_script_in_name_is_refused_and_escaped(agent: Any) -> None:
    c = client_for(agent)
    response = c.post("/register/", form_data(full_name="<script>alert(1)</script>"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "may only contain letters" in body


def test_duplicate_nik_in_form_is_a_message_not_500(agent: Any, register: Any) -> None:
    register()
    c = client_for(agent)
    response = c.post("/register/", form_data())
    assert response.status_code == 400
    # held outside the agent's scope: a neutral message (tests/enrollment/test_check_nik.py)
    assert "cannot be registered" in response.content.decode()


def test_agent_cannot_see_another_branch_participant(
    agent: Any, other_agent: Any, register: Any
) -> None:
    theirs = register(registered_by=other_agent.staff)
    c = client_for(agent)
    for url in (
        f"/participants/{theirs.pk}/",
        f"/participants/{theirs.pk}/card/",
        f"/participants/{theirs.pk}/registered/",
    ):
        assert c.get(url).status_code == 404
    assert theirs.kpj_number not in c.get("/").content.decode()
    assert theirs.kpj_number not in c.get(f"/?q={theirs.nik}").content.decode()


def test_supervisor_sees_branch_admin_sees_all(
    supervisor: Any, admin_user: Any, agent: Any, other_agent: Any, register: Any
) -> None:
    ours = register(registered_by=agent.staff)
    theirs = register(registered_by=other_agent.staff, nik=nik_for(serial=9))
    sup = client_for(supervisor)
    assert sup.get(f"/participants/{ours.pk}/").status_code == 200
    assert sup.get(f"/participants/{theirs.pk}/").status_code == 404
    boss = client_for(admin_user)
    assert boss.get(f"/participants/{theirs.pk}/").status_code == 200


def test_search_by_nik_kpj_and_name(agent: Any, register: Any) -> None:
    p = register(registered_by=agent.staff)
    c = client_for(agent)
    for term in (p.nik, p.kpj_number, "santoso"):
        assert p.kpj_number in c.get("/", {"q": term}).content.decode()
    assert p.kpj_number not in c.get("/", {"q": "nobody"}).content.decode()


def test_list_is_paginated(agent: Any, register: Any) -> None:
    for i in range(30):
        register(registered_by=agent.staff, nik=nik_for(serial=100 + i))
    body = client_for(agent).get("/").content.decode()
    assert body.count("/participants/") == 25
    assert "page 1 of 2" in body


def test_nik_masked_in_list(agent: Any, register: Any) -> None:
    p = register(registered_by=agent.staff)
    body = client_for(agent).get("/").content.decode()
    assert p.nik not in body and p.masked_nik in body


def test_cascading_region_options(agent: Any) -> None:
    c = client_for(agent)
    body = c.get("/regions/options/", {"level": 2, "province": "32"}).content.decode()
    assert 'value="32.73"' in body and "BANDUNG" in body.upper()
    body = c.get("/regions/options/", {"level": 4, "district": "32.73.05"}).content.decode()
    assert 'value="32.73.05.1001"' in body
    assert c.get("/regions/options/", {"level": 9}).status_code == 400


def test_inline_nik_check(agent: Any, register: Any) -> None:
    c = client_for(agent)
    assert "16 digits" in c.post("/register/check-nik/", {"nik": "12"}).content.decode()
    assert "Valid NIK" in c.post("/register/check-nik/", {"nik": nik_for()}).content.decode()
    register(registered_by=agent.staff)  # in the agent's scope (tests/enrollment/test_check_nik.py)
    assert (
        "already registered" in c.post("/register/check-nik/", {"nik": nik_for()}).content.decode()
    )


def test_card_has_qr_and_kpj(agent: Any, register: Any) -> None:
    p = register(registered_by=agent.staff)
    body = client_for(agent).get(f"/participants/{p.pk}/card/").content.decode()
    assert p.kpj_number in body and "<svg" in body


def test_indonesian_is_the_default_language(agent: Any) -> None:
    c = Client()
    assert password_login(c, agent)
    body = c.get("/register/").content.decode()
    assert 'lang="id"' in body
    assert "Daftarkan pekerja" in body


def test_english_is_switchable(agent: Any) -> None:
    c = Client()
    assert password_login(c, agent)
    c.post("/i18n/setlang/", {"language": "en", "next": "/"})
    body = c.get("/register/").content.decode()
    assert 'lang="en"' in body and "Register a worker" in body


def test_indonesian_error_messages(agent: Any) -> None:
    c = client_for(agent, language="id")
    body = c.post("/register/", form_data(nik="12345")).content.decode()
    assert "NIK harus tepat 16 angka" in body


def test_admin_participant_list_masks_nik_and_searches(admin_user: Any, register: Any) -> None:
    p = register()
    c = client_for(admin_user)
    body = c.get("/admin/enrollment/participant/", {"q": p.kpj_number}).content.decode()
    assert p.kpj_number in body and p.masked_nik in body and p.nik not in body
    assert p.kpj_number in c.get("/admin/enrollment/participant/", {"q": p.nik}).content.decode()


def test_admin_add_participant_uses_the_service(admin_user: Any) -> None:
    c = client_for(admin_user)
    data = {
        "nik": nik_for(),
        "full_name": "Budi Santoso",
        "birth_date": "1990-05-17",
        "sex": "M",
        "phone": "081234567890",
        "email": "",
        "village": "32.73.05.1001",
        "address": "Jl. X",
        "occupation": "petani",
        "declared_income": "1000000",
        "channel": "branch",
        "consent_data": "on",
        "language": "id",
    }
    bad = c.post("/admin/enrollment/participant/add/", {**data, "sex": "F"})
    assert bad.status_code == 200 and Participant.objects.count() == 0
    ok = c.post("/admin/enrollment/participant/add/", data)
    assert ok.status_code == 302
    p = Participant.objects.get()
    assert p.phone == "+6281234567890" and len(p.kpj_number) == 11


def test_regional_admin_sees_their_province_only(
    branches: Any, agent: Any, other_agent: Any, register: Any
) -> None:
    from enrollment.models import StaffProfile
    from tests.conftest import make_staff

    regional = make_staff("jabar", "agent", branches["BDG"])
    StaffProfile.objects.filter(user=regional).update(
        role="regional_admin", branch=None, province_id="32"
    )
    in_32 = register(registered_by=agent.staff)
    in_35 = register(
        registered_by=other_agent.staff, nik=nik_for(serial=5), village="35.78.01.1001"
    )
    c = client_for(regional)
    assert c.get(f"/participants/{in_32.pk}/").status_code == 200
    assert c.get(f"/participants/{in_35.pk}/").status_code == 404


def test_supervisor_sees_the_agents_of_their_branch(
    supervisor: Any, agent: Any, other_agent: Any, register: Any
) -> None:
    register(registered_by=agent.staff)
    body = client_for(supervisor).get("/").content.decode()
    assert "branch-agents" in body
    assert agent.username in body and other_agent.username not in body
    assert "branch-agents" not in client_for(agent).get("/").content.decode()


def test_nul_in_a_parameter_is_a_clear_400_not_500(agent: Any) -> None:
    c = client_for(agent)
    for url in ("/?q=a%00b", "/regions/options/?level=2&province=3%002"):
        response = c.get(url)
        assert response.status_code == 400 and "NUL" in response.content.decode()
    response = c.post("/register/", form_data(full_name="Budi\x00Santoso"))
    assert response.status_code == 400 and "NUL" in response.content.decode()
    assert Participant.objects.count() == 0


def test_likely_duplicates_name_only_participants_in_the_users_scope(
    agent: Any, other_agent: Any, register: Any
) -> None:
    """The page after registering warns of the same name, birth date and village under another
    NIK - but names nobody the agent may not see (it listed the whole country's matches)."""
    from tests.conftest import nik_for

    theirs = register(nik=nik_for(serial=61), registered_by=other_agent.staff)
    own_twin = register(nik=nik_for(serial=62), registered_by=agent.staff)
    mine = register(nik=nik_for(serial=63), registered_by=agent.staff)
    body = client_for(agent).get(f"/participants/{mine.pk}/registered/").content.decode()
    assert own_twin.kpj_number in body
    assert theirs.kpj_number not in body
