"""An admin opens the dashboard on a 360-px phone and sees the cohort retention chart (a canvas
Chart.js drew with the cohorts' curves), the cohort table and the lapse/reactivation flows;
the page does not scroll sideways; a screenshot goes to /tmp/cohorts.png."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.services import register_participant
from reporting.rollups import rebuild_cohorts
from tests.conftest import login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]

NOW = "2026-11-20T05:00:00Z"
TODAY = date(2026, 11, 20)


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, dtime(hour, 0)))


def _generate(n: int = 30) -> None:
    """Participants registered from January 2025 on, each paying monthly for a while and then
    stopping (some coming back), at their own instants."""
    rng = random.Random(11)
    for i in range(n):
        reg_day = date(2025, 1, 3) + timedelta(days=rng.randrange(560))
        with time_machine.travel(_at(reg_day, 9), tick=False):
            p = register_participant(**registration_data(nik=nik_for(serial=700 + i)))
        day = reg_day + timedelta(days=1)
        stop = rng.randrange(1, 14)
        paid = 0
        while day < TODAY - timedelta(days=2):
            if paid == stop and rng.random() < 0.7:
                day += timedelta(days=150)  # lapse, maybe come back
                paid = 0
                continue
            with time_machine.travel(_at(day, 10), tick=False):
                due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=day)
                record_payment(
                    participant=p,
                    amount=due.amount,
                    months=1,
                    payer="participant",
                    channel="bank",
                    reference=f"E2E-C-{i}-{day.isoformat()}",
                    paid_at=timezone.now(),
                    notify=False,
                )
            paid += 1
            day += timedelta(days=30)


@pytest.mark.clock(NOW)
def test_admin_sees_cohort_chart_and_table(page: Any, live_server: Any, admin_user: Any) -> None:
    _generate()
    assert rebuild_cohorts(force=True).cohort_rows > 0
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/reports/#cohorts")
    page.wait_for_selector("[data-testid=table-cohorts]")
    page.wait_for_function(
        "window.Chart && Chart.getChart('chart-cohorts')"
        " && Chart.getChart('chart-cohorts').data.datasets.length > 1"
        " && document.getElementById('chart-cohorts').width > 0"
    )
    datasets = page.evaluate(
        "Chart.getChart('chart-cohorts').data.datasets.map(d => d.data.filter(v => v !== null))"
    )
    assert any(len(d) > 3 and max(d) > 0 for d in datasets), datasets
    rows = page.locator("[data-testid=table-cohorts] tbody tr")
    assert rows.count() >= 10
    first = rows.first.locator("td")
    assert first.nth(2).inner_text().endswith("%")
    page.wait_for_function("Chart.getChart('chart-flows') !== undefined")
    assert page.locator("[data-testid=table-flows] tbody tr").count() == 24
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.locator("[data-testid=cohorts]").scroll_into_view_if_needed()
    page.locator("[data-testid=cohorts]").screenshot(path="/tmp/cohorts.png")

    page.select_option("[data-testid=cohort-channel]", "agent")
    page.click("[data-testid=cohort-apply]")
    page.wait_for_url("**channel=agent**")
    assert page.locator("[data-testid=cohort-cut]").count() == 1
