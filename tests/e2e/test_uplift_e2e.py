"""An admin opens the reminder uplift page on a 360-px phone (Debian's Chromium): the table of
reminded vs held out shows the figures the ledger gives, with the interval, without sideways
scrolling; a screenshot goes to /tmp/uplift.png (docs/reminders.md "Holdout and uplift")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.messaging import reminders
from contributions.models import Coverage, ReminderAssignment, ReminderRule
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.models import Participant
from enrollment.services import register_participant
from tests.conftest import login, nik_for, registration_data

INSTANT = "2026-11-30T05:00:00Z"  # 12:00 WIB: both windows of 12 November have closed
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata"), pytest.mark.clock(INSTANT)]
D = date(2026, 11, 12)  # the day due_soon fired for November
NOV = date(2026, 11, 1)


def _participant(i: int) -> Participant:
    p = register_participant(
        **registration_data(nik=nik_for(serial=500 + i), phone=f"0812555{i:05d}")
    )
    Coverage.objects.filter(pk=p.pk).update(start_month=date(2026, 10, 1))
    registered = timezone.make_aware(datetime.combine(date(2026, 10, 1), time(9)))
    Participant.objects.filter(pk=p.pk).update(created_at=registered)
    p.refresh_from_db()
    return p


def _pay(p: Participant, day: date, ref: str) -> None:
    cov = Coverage.objects.get(pk=p.pk)
    due = quote_payment(p, cov, months=1, as_of=day)
    record_payment(
        participant=p,
        amount=due.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference=ref,
        paid_at=timezone.make_aware(datetime.combine(day, time(10))),
        backdated=True,
    )


def _seed() -> None:
    """12 reminded, 12 held out. Reminded: 9 pay on D+2 (within 7 days), 1 on D+9 (within 14).
    Held out: 3 pay on D+4, 2 on D+10. 7 days: 9/12 vs 3/12; 14 days: 10/12 vs 5/12."""
    reminders.seed_reminder_rules()
    ReminderRule.objects.filter(kind="due_soon").update(holdout_percent=50)
    rule = ReminderRule.objects.get(kind="due_soon")
    for i in range(24):
        p = _participant(i)
        held = i >= 12
        ReminderAssignment.objects.create(
            participant=p, rule=rule, period=NOV, held_out=held, holdout_percent=50, assigned_on=D
        )
        k = i - 12 if held else i
        if not held and k < 9:
            _pay(p, D + timedelta(days=2), f"UP-{i}")
        elif not held and k == 9:
            _pay(p, D + timedelta(days=9), f"UP-{i}")
        elif held and k < 3:
            _pay(p, D + timedelta(days=4), f"UP-{i}")
        elif held and k < 5:
            _pay(p, D + timedelta(days=10), f"UP-{i}")


def test_admin_sees_the_uplift_table(
    page: Any, live_server: Any, admin_user: Any, settings: Any
) -> None:
    settings.REMINDER_UPLIFT_MIN_ARM = 10
    settings.NOTIFY_ON_REGISTRATION = False
    settings.NOTIFY_ON_PAYMENT = False
    _seed()
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/reminders/today/")
    page.click("[data-testid=uplift-link]")
    page.wait_for_url("**/reminders/uplift/")
    card = page.locator("section.uplift[data-kind=due_soon][data-month='2026-11']")
    card.wait_for()
    # Indonesian (the default language): a decimal comma
    assert "75,0 %" in card.locator("[data-col=reminded_7]").inner_text()
    assert "(9/12)" in card.locator("[data-col=reminded_7]").inner_text()
    assert "(3/12)" in card.locator("[data-col=held_7]").inner_text()
    assert "(10/12)" in card.locator("[data-col=reminded_14]").inner_text()
    assert "(5/12)" in card.locator("[data-col=held_14]").inner_text()
    # 9/12 - 3/12 = 50 points; Newcombe: 0.1008 to 0.7278 (uplift.newcombe(9, 12, 3, 12))
    diff7 = card.locator("[data-col=diff_7]")
    assert diff7.get_attribute("data-status") == "ok"
    assert "50,0" in diff7.inner_text() and "10,1" in diff7.inner_text()
    assert "72,8" in diff7.inner_text()
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 360, f"the page is {wide} px wide on a 360-px phone"
    page.screenshot(path="/tmp/uplift.png", full_page=True)
