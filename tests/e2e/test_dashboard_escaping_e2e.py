"""An occupation and a partner named with a `</script>` tag: in a real browser the dashboard's
charts still draw (the json_script data block holds the name whole) and nothing runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.models import Occupation, Partner
from enrollment.services import register_participant
from reporting.rollups import rebuild_rollups
from tests.conftest import login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]

HOSTILE = "Tukang </script><script>alert(1)</script>"


def test_dashboard_charts_draw_a_name_with_a_script_tag(
    page: Any, live_server: Any, admin_user: Any
) -> None:
    Occupation.objects.create(code="evil", name_id=HOSTILE, name_en=HOSTILE, sort_order=1)
    partner = Partner.objects.create(code="EVIL", name=HOSTILE, kind="sponsor")
    today = timezone.localdate()
    p = register_participant(
        **registration_data(nik=nik_for(serial=81), occupation="evil", partner=partner)
    )
    due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=today)
    record_payment(
        participant=p,
        amount=due.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference="XSS-1",
        paid_at=timezone.now(),
    )
    rebuild_rollups(start=today, end=today)

    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/reports/")
    page.wait_for_function("window.Chart && window.Chart.getChart('chart-occupation')")
    labels = page.evaluate("window.Chart.getChart('chart-occupation').data.labels")
    assert HOSTILE in labels
    assert page.evaluate("window.Chart.getChart('chart-series') !== undefined")
    # the name is text in the tables, not markup
    assert page.locator("[data-testid=table-occupation]").inner_text().count(HOSTILE) >= 1
    assert dialogs == []
