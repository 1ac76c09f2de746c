"""An agent opens their commission pages on a 360-px phone: this month's draft, each line with
its reason, nothing wider than the screen; an admin's early approval is refused with a message."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contributions.commissions.services import compute_month
from contributions.coverage import month_start
from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.services import register_participant
from tests.conftest import ROOT, login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]


def test_agent_sees_draft_and_reasons_on_a_phone(
    page: Any, live_server: Any, agent: Any, admin_user: Any
) -> None:
    for i in range(3):
        p = register_participant(
            **registration_data(
                nik=nik_for(serial=950 + i),
                registered_by=agent.staff,
                full_name="Siti Nurhaliza Binti Abdullah Panjang Sekali",
            )
        )
        due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=2, as_of=timezone.localdate())
        record_payment(
            participant=p,
            amount=due.amount,
            months=2,
            payer="participant",
            channel="bank",
            reference=f"E2E-COMM-{i}",
            paid_at=timezone.now(),
        )
    compute_month(month=month_start(timezone.localdate()))
    login(page, live_server, agent.username)
    page.goto(f"{live_server.url}/commissions/")
    page.wait_for_selector("[data-testid=this-month] a")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click("[data-testid=this-month] a")
    page.wait_for_selector("[data-testid=lines] [data-kind=incentive]")
    assert page.locator("[data-kind=incentive]").count() == 3
    assert page.locator("[data-kind=fee]").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ROOT / "var" / "e2e-commission-statement.png"), full_page=True)
    url = page.url

    page.context.clear_cookies()
    login(page, live_server, admin_user.username)
    page.goto(url)
    page.click("form[action$='/approve/'] button")
    page.wait_for_selector(".messages li.error")
    assert "belum berakhir" in page.inner_text(".messages li.error") or "not over" in (
        page.inner_text(".messages li.error")
    )
    assert page.inner_text("[data-testid=status]") in ("Draf", "Draft")
