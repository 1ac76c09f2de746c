"""An agent on a 360 x 740 phone works the follow-up queue: records a promise for a date, sees the
participant leave the top, and - the clock moved to the promised day - sees them back on top.
The page never scrolls sideways. Screenshot: /tmp/followup_360.png (and var/)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine

from contributions.follow_up.models import FollowUpOutcome
from contributions.models import Coverage
from contributions.rates import add_months
from contributions.services import refresh_coverage_statuses
from enrollment.services import register_participant
from tests.conftest import login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]

JUNE = date(2026, 6, 1)


def _participant(agent: Any, serial: int, name: str, months_behind: int) -> Any:
    p = register_participant(
        **registration_data(nik=nik_for(serial=serial), full_name=name, registered_by=agent.staff)
    )
    Coverage.objects.filter(pk=p.pk).update(start_month=add_months(JUNE, -months_behind))
    return p


def _order(page: Any) -> list[int]:
    return [
        int(x)
        for x in page.eval_on_selector_all(
            "[data-testid=fu-row]", "rs => rs.map(r => r.dataset.pk)"
        )
    ]


def _fits_360(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px phone"


@pytest.mark.clock("2026-06-10T03:00:00Z")  # 10:00 WIB, Wednesday 10 June 2026
def test_agent_records_a_promise_and_the_participant_returns_on_its_date(
    page: Any, live_server: Any, agent: Any
) -> None:
    first = _participant(agent, 51, "Siti Rahmawati Kusumaningrum", 2)  # April unpaid
    second = _participant(agent, 52, "Budi Santoso", 1)
    third = _participant(agent, 53, "Agus Salim", 0)
    refresh_coverage_statuses()

    login(page, live_server, agent.username)
    page.goto(f"{live_server.url}/arrears/")
    page.wait_for_selector("[data-testid=fu-row]")
    assert _order(page) == [first.pk, second.pk, third.pk]
    top = page.locator(f"#p{first.pk}")
    assert "Rp" in top.locator("[data-testid=fu-amount]").inner_text()
    # "sisa 12 hari (…)" in Indonesian, the default: the days left before lapse, a number
    assert re.match(r"sisa \d+ hari", top.locator("[data-testid=fu-days]").inner_text().strip())
    href = top.locator("[data-testid=fu-whatsapp]").get_attribute("href")
    assert href.startswith("https://wa.me/6281234567890?text=")
    assert top.locator("[data-testid=fu-call]").get_attribute("href") == "tel:+6281234567890"
    _fits_360(page)

    top.locator("summary").click()
    top.locator("select[name=outcome]").select_option("promised")
    top.locator("input[name=promised_date]").fill("2026-06-20")
    top.locator("input[name=note]").fill("setelah panen")
    _fits_360(page)  # the open form too
    top.locator("button[type=submit]").click()
    page.wait_for_selector(".messages li")
    assert _order(page) == [second.pk, third.pk, first.pk]  # left the top
    assert FollowUpOutcome.objects.get().promised_date == date(2026, 6, 20)
    _fits_360(page)
    page.screenshot(path="/tmp/followup_360.png", full_page=True)
    page.screenshot(path="var/e2e-follow-up.png", full_page=True)

    with time_machine.travel(datetime(2026, 6, 20, 3, 0, tzinfo=UTC), tick=True):
        login(page, live_server, agent.username)  # ten days later: a fresh login
        page.goto(f"{live_server.url}/arrears/")
        page.wait_for_selector("[data-testid=fu-row]")
        assert _order(page) == [first.pk, second.pk, third.pk]  # back on top
        assert "fu-promise-due" in (page.locator(f"#p{first.pk}").get_attribute("class") or "")
        _fits_360(page)
        page.screenshot(path="var/e2e-follow-up-promise-day.png", full_page=True)


@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_supervisor_sees_the_outcomes_table_on_a_phone(
    page: Any, live_server: Any, agent: Any, supervisor: Any
) -> None:
    from contributions.follow_up.services import record_outcome

    p = _participant(agent, 61, "Dewi Lestari", 1)
    refresh_coverage_statuses()
    record_outcome(
        participant=p, outcome="promised", recorded_by=agent, promised_date=date(2026, 6, 12)
    )
    login(page, live_server, supervisor.username)
    page.goto(f"{live_server.url}/arrears/")
    table = page.locator("[data-testid=fu-summary] table")
    table.wait_for()
    assert "1" in table.locator("tbody tr").first.inner_text()
    _fits_360(page)  # the wide table scrolls inside its own box, never the page
    page.screenshot(path="var/e2e-follow-up-supervisor.png", full_page=True)
