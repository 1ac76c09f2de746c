"""Pay links in payment reminders: a short signed link to a page with the masked name, the
amount due now and a bill (code, QR, where to pay); expired and tampered links are refused;
the reminders page shows per rule who paid within 7 days and who used the link
(contributions/messaging/pay_links.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions.messaging import pay_links, reminders
from contributions.models import Bill, Payment, Reminder
from contributions.selectors import amount_due_now
from tests.conftest import login_as

pytestmark = pytest.mark.django_db
LINK = re.compile(r"http://testserver(/b/[0-9a-z]+\.[0-9a-z]+\.[A-Za-z0-9_-]{16}/)")


def a_reminder(participant: Any, kind: str = "due_soon", sent_days_ago: int = 1) -> Reminder:
    today = timezone.localdate()
    sent = timezone.now() - timedelta(days=sent_days_ago)
    return Reminder.objects.create(
        participant=participant,
        kind=kind,
        period=today.replace(day=1),
        planned_for=today,
        send_after=sent,
        channel="sms",
        state="sent",
        sent_at=sent,
    )


@pytest.fixture
def linked(settings: Any, make_participant: Any) -> Any:
    settings.PORTAL_URL = "http://testserver"

    def _linked(**kw: Any) -> tuple[Reminder, str]:
        reminder = a_reminder(make_participant(**kw))
        match = LINK.search(reminders.render_reminder(reminder).text)
        assert match, "a payment reminder carries its pay link"
        return reminder, match.group(1)

    return _linked


def test_a_payment_reminder_carries_a_short_link_and_a_thanks_does_not(
    linked: Any, make_participant: Any
) -> None:
    _reminder, path = linked()
    assert len(path) < 45  # fits an SMS beside the message
    thanks = a_reminder(make_participant(), kind="payment_thanks")
    assert "/b/" not in reminders.render_reminder(thanks).text


def test_the_link_opens_the_amount_and_a_bill_and_nothing_else(linked: Any) -> None:
    reminder, path = linked(full_name="Siti Rahayu Lestari")
    participant = reminder.participant
    page = Client().get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "S*** R*** L***" in html
    for private in (participant.full_name, participant.kpj_number, participant.phone, "Rahayu"):
        assert private not in html
    due = amount_due_now(participant, participant.coverage, timezone.localdate())
    bill = Bill.objects.get(participant=participant)
    assert (bill.amount, bill.months) == (due["amount"], due["months"])
    assert f'data-code="{bill.code}"' in html and "<svg" in html
    assert f"Rp {bill.amount:,}".replace(",", ".") in html
    assert page["Cache-Control"] == "no-store"
    opened = Reminder.objects.get(pk=reminder.pk).link_opened_at
    assert opened is not None
    again = Client().get(path)
    assert f'data-code="{bill.code}"' in again.content.decode()  # the same open bill
    assert Reminder.objects.get(pk=reminder.pk).link_opened_at == opened
    assert Bill.objects.count() == 1


def test_tampered_unknown_and_expired_links_are_refused(linked: Any) -> None:
    reminder, path = linked()
    token = path.split("/")[2]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_id = pay_links.make_token(reminder.pk + 1000, expires=date(2099, 1, 1))
    assert Client().get(f"/b/{flipped}/").status_code == 404
    assert Client().get("/b/not-a-token/").status_code == 404
    assert Client().get(f"/b/{other_id}/").status_code == 404  # signed, but no such reminder
    yesterday = timezone.localdate() - timedelta(days=1)
    expired = Client().get(f"/b/{pay_links.make_token(reminder.pk, expires=yesterday)}/")
    assert expired.status_code == 410
    assert not Bill.objects.exists()
    assert Reminder.objects.get(pk=reminder.pk).link_opened_at is None


def test_the_link_lasts_pay_link_days(settings: Any, linked: Any) -> None:
    settings.PAY_LINK_DAYS = 3
    reminder, path = linked()
    link = pay_links.read_token(path.split("/")[2])
    assert link is not None and link.reminder_id == reminder.pk
    assert link.expires == timezone.localdate() + timedelta(days=3)


def test_the_reminders_page_shows_who_paid_within_a_week_and_who_used_the_link(
    make_participant: Any, pay: Any, admin_user: Any
) -> None:
    paid_with_link, paid_without, unpaid, paid_late = (make_participant() for _ in range(4))
    for p in (paid_with_link, paid_without, unpaid):
        a_reminder(p)
    late = a_reminder(paid_late, kind="overdue", sent_days_ago=9)
    pay_links.note_visit(Reminder.objects.get(participant=paid_with_link))
    pay_links.note_visit(Reminder.objects.get(participant=unpaid))
    pay(paid_with_link)
    pay(paid_without)
    pay(paid_late)  # 9 days after its reminder: not within the week
    assert Payment.objects.count() == 3 and late.sent_at is not None
    rows = {row["kind"]: row for row in pay_links.uplift(timezone.localdate())}
    columns = ("sent", "paid_7d", "opened", "paid_with_link")
    figures = {kind: tuple(row[c] for c in columns) for kind, row in rows.items()}
    assert figures == {"due_soon": (3, 2, 2, 1), "overdue": (1, 0, 0, 0)}
    client = Client()
    login_as(client, admin_user, with_password=True)
    html = client.get(reverse("contributions:reminders_today")).content.decode()
    assert 'data-testid="reminder-uplift"' in html
    assert re.search(r'data-kind="due_soon">.*?data-col="paid_with_link">1<', html, re.S)
