"""An agent on a 360-px phone registers a worker through the cascading selects (real Chromium)."""

from typing import Any

import pytest

from enrollment.models import Participant
from tests.conftest import login, nik_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]


def test_agent_registers_a_worker_end_to_end(page: Any, live_server: Any, agent: Any) -> None:
    login(page, live_server, agent.username)
    page.click("text=Daftarkan pekerja")
    page.wait_for_url("**/register/")

    # Inline validation while typing a malformed NIK
    page.fill("#id_nik", "32730517")
    page.dispatch_event("#id_nik", "change")
    page.wait_for_selector("[data-testid=nik-check].error")
    assert "16 angka" in page.inner_text("[data-testid=nik-check]")

    page.fill("#id_nik", nik_for())
    page.dispatch_event("#id_nik", "change")
    page.wait_for_selector("[data-testid=nik-check].ok")

    page.fill("#id_full_name", "Siti Rahayu Test")
    page.fill("#id_birth_date", "1990-05-17")
    page.check("input[name=sex][value=M]")
    page.fill("#id_phone", "0812 3456 7890")

    # Cascading selects: each choice loads the next level through htmx
    page.select_option("#id_province", "32")
    page.wait_for_selector("#id_regency option[value='32.73']", state="attached")
    page.select_option("#id_regency", "32.73")
    page.wait_for_selector("#id_district option[value='32.73.05']", state="attached")
    page.select_option("#id_district", "32.73.05")
    page.wait_for_selector("#id_village option[value='32.73.05.1001']", state="attached")
    page.select_option("#id_village", "32.73.05.1001")

    page.fill("#id_address", "Jl. Melati No. 5")
    page.select_option("#id_occupation", "petani")
    page.select_option("#id_declared_income", "1000000")
    page.check("#id_consent_data")
    page.screenshot(path="var/e2e-register-form.png")  # full_page here upsets the next click
    page.click("form[data-once] button[type=submit]")

    page.wait_for_selector("[data-testid=kpj]")
    kpj = page.inner_text("[data-testid=kpj]").strip()
    participant = Participant.objects.get(kpj_number=kpj)
    assert participant.registered_by == agent.staff
    page.screenshot(path="var/e2e-registered.png", full_page=True)

    page.goto(f"{live_server.url}/")
    assert kpj in page.inner_text("#participants")
    page.fill("#q", "Siti Rahayu")
    page.press("#q", "Enter")
    page.wait_for_load_state()
    assert kpj in page.inner_text("#participants")


def test_invalid_nik_on_submit_shows_message(page: Any, live_server: Any, agent: Any) -> None:
    login(page, live_server, agent.username)
    page.goto(f"{live_server.url}/register/")
    page.fill("#id_nik", "3273051705900000")
    page.check("#id_consent_data")
    page.click("form[data-once] button[type=submit]")
    page.wait_for_selector("#form-errors")
    assert "0000" in page.inner_text("#field-nik")
    assert Participant.objects.count() == 0
