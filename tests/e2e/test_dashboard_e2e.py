"""An admin opens the dashboard on a 360-px phone: headline numbers equal the database, the
province filter narrows them, an export downloads, and a screenshot is saved to var/."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.models import Participant
from enrollment.services import register_participant
from reporting.rollups import rebuild_rollups
from tests.conftest import ROOT, login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]


def _generate(n: int = 24) -> None:
    rng = random.Random(7)
    today = timezone.localdate()
    for i in range(n):
        jatim = i % 3 == 0
        village, prefix = ("35.78.01.1001", "357801") if jatim else ("32.73.05.1001", "327305")
        born = date(1970 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28))
        p = register_participant(
            **registration_data(
                nik=nik_for(born, "M", 300 + i, prefix=prefix),
                birth_date=born,
                village=village,
                occupation=rng.choice(["petani", "pedagang", "ojol"]),
            )
        )
        if i % 2 == 0:
            cov = Coverage.objects.get(pk=p.pk)
            due = quote_payment(p, cov, months=1, as_of=today)
            record_payment(
                participant=p,
                amount=due.amount,
                months=1,
                payer="participant",
                channel="bank",
                reference=f"E2E-{i}",
                paid_at=timezone.now(),
            )
    rebuild_rollups(start=max(date(today.year, 1, 1), today - timedelta(days=3)), end=today)


def _number(text: str) -> int:
    return int("".join(ch for ch in text if ch.isdigit()) or 0)


def test_dashboard_headline_filter_export(page: Any, live_server: Any, admin_user: Any) -> None:
    _generate()
    (ROOT / "var").mkdir(exist_ok=True)
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/reports/")
    page.wait_for_selector("[data-testid=headline-active]")
    active = Coverage.objects.filter(status="active").count()
    assert _number(page.inner_text("[data-testid=headline-active]")) == active
    assert _number(page.inner_text("[data-testid=headline-registered]")) == (
        Participant.objects.count()
    )
    assert _number(page.inner_text("[data-testid=headline-lapsed]")) == 0
    page.wait_for_function("document.getElementById('chart-series').width > 0")

    page.select_option("[data-testid=filter-province]", "35")
    page.click("[data-testid=apply-filters]")
    page.wait_for_url("**province=35**")
    page.wait_for_selector("[data-testid=headline-registered]")
    assert _number(page.inner_text("[data-testid=headline-registered]")) == (
        Participant.objects.filter(province_id="35").count()
    )
    assert _number(page.inner_text("[data-testid=headline-active]")) == (
        Coverage.objects.filter(status="active", participant__province_id="35").count()
    )

    with page.expect_download() as info:
        page.click("[data-testid=export-regency-csv]")
    download = info.value
    target = Path(ROOT / "var" / "e2e-dashboard-regency.csv")
    download.save_as(str(target))
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["35.78"]
    assert int(rows[1][2]) == Participant.objects.filter(province_id="35").count()

    page.screenshot(path=str(ROOT / "var" / "e2e-dashboard.png"), full_page=True)
