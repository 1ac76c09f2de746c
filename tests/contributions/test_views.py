"""Pages: participant panel, cash payment and receipt, ledger, arrears; scope; admin."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from contributions.models import Coverage, ImportReport, LedgerEntry, Payment, RateSchedule
from contributions.quotes import quote_payment
from contributions.rates import add_months
from tests.conftest import login_as
from tests.contributions.conftest import assert_ledger_consistent

# statuses, amounts due and arrears as of today: at 23:30 UTC and 00:30 WIB (two dates at once)
pytestmark = [pytest.mark.django_db, pytest.mark.two_clocks]


def client_for(user: Any) -> Client:
    c = Client()
    login_as(c, user, with_password=True)
    return c


@pytest.fixture
def mine(make_participant: Any, agent: Any) -> Any:
    return make_participant(registered_by=agent.staff)


def due(p: Any, months: int = 1) -> int:
    from django.utils import timezone

    cov = Coverage.objects.get(pk=p.pk)
    return quote_payment(p, cov, months=months, as_of=timezone.localdate()).amount


def test_participant_page_shows_status_due_and_cash_form(agent: Any, mine: Any) -> None:
    response = client_for(agent).get(reverse("enrollment:participant", args=[mine.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="grace"' in html
    assert 'data-testid="cash-form"' in html
    assert reverse("contributions:ledger", args=[mine.pk]) in html


def test_agent_records_cash_and_gets_a_receipt(agent: Any, mine: Any) -> None:
    client = client_for(agent)
    token = str(uuid.uuid4())
    data = {"months": "2", "amount": str(due(mine, 2)), "client_token": token}
    url = reverse("contributions:record_cash", args=[mine.pk])
    response = client.post(url, data)
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert response["Location"] == reverse("contributions:receipt", args=[payment.pk])
    assert payment.collected_by == agent.staff and payment.channel == "agent"
    assert LedgerEntry.objects.get().created_by == agent
    receipt = client.get(response["Location"])
    assert receipt.status_code == 200 and 'data-status="active"' in receipt.content.decode()
    # a double-submitted form is the same payment
    again = client.post(url, data)
    assert again["Location"] == response["Location"] and Payment.objects.count() == 1


def test_wrong_cash_amount_shows_the_expected_amount(agent: Any, mine: Any) -> None:
    response = client_for(agent).post(
        reverse("contributions:record_cash", args=[mine.pk]),
        {"months": "1", "amount": "1", "client_token": str(uuid.uuid4())},
    )
    assert response.status_code == 400
    assert f"{due(mine):,}".replace(",", ".") in response.content.decode()
    assert not Payment.objects.exists()
    assert_ledger_consistent()


def test_pages_of_another_agents_participant_are_404(other_agent: Any, mine: Any) -> None:
    client = client_for(other_agent)
    assert client.get(reverse("contributions:ledger", args=[mine.pk])).status_code == 404
    cash = reverse("contributions:record_cash", args=[mine.pk])
    assert client.post(cash, {"months": "1", "amount": "1"}).status_code == 404


def test_receipt_of_another_agents_payment_is_404(
    agent: Any, other_agent: Any, mine: Any, pay: Any
) -> None:
    payment, _ = pay(mine)
    url = reverse("contributions:receipt", args=[payment.pk])
    assert client_for(agent).get(url).status_code == 200
    assert client_for(other_agent).get(url).status_code == 404


def test_supervisor_sees_the_branch_ledger(supervisor: Any, mine: Any, pay: Any) -> None:
    pay(mine)
    response = client_for(supervisor).get(reverse("contributions:ledger", args=[mine.pk]))
    assert response.status_code == 200 and 'data-testid="ledger"' in response.content.decode()


def test_ledger_is_paginated(agent: Any, mine: Any, pay: Any) -> None:
    for _ in range(30):
        pay(mine, months=1)
    client = client_for(agent)
    page1 = client.get(reverse("contributions:ledger", args=[mine.pk]))
    assert page1.context["page"].paginator.num_pages == 2
    assert len(page1.context["page"].object_list) == 25


def test_arrears_lists_grace_before_lapsed_oldest_first(
    agent: Any, other_agent: Any, make_participant: Any, pay: Any
) -> None:
    from django.utils import timezone

    month = timezone.localdate().replace(day=1)
    lapsed = make_participant(registered_by=agent.staff, start_month=add_months(month, -7))
    grace_old = make_participant(registered_by=agent.staff, start_month=add_months(month, -2))
    grace_new = make_participant(registered_by=agent.staff)
    active = make_participant(registered_by=agent.staff)
    pay(active)
    make_participant(registered_by=other_agent.staff)  # not mine
    from contributions.services import refresh_coverage_statuses

    refresh_coverage_statuses()
    response = client_for(agent).get(reverse("contributions:arrears"))
    assert response.status_code == 200
    order = [p.pk for p in response.context["page"]]
    assert order == [grace_old.pk, grace_new.pk, lapsed.pk]
    assert f'href="tel:{lapsed.phone}"' in response.content.decode()


def test_admin_reverses_a_payment_with_a_reason(admin_user: Any, mine: Any, pay: Any) -> None:
    payment, _ = pay(mine)
    client = client_for(admin_user)
    url = reverse("admin:contributions_payment_changelist")
    ask = client.post(url, {"action": "reverse_payments", "_selected_action": [payment.pk]})
    assert ask.status_code == 200 and b"reason" in ask.content
    done = client.post(
        url,
        {"action": "reverse_payments", "_selected_action": [payment.pk], "reason": "bounced"},
    )
    assert done.status_code == 302
    reversal = LedgerEntry.objects.get(kind="reversal")
    assert reversal.reason == "bounced" and reversal.created_by == admin_user
    assert Coverage.objects.get(pk=mine.pk).paid_through is None
    assert_ledger_consistent()


def test_admin_rate_schedule_cannot_be_edited_or_deleted(admin_user: Any) -> None:
    client = client_for(admin_user)
    schedule = RateSchedule.objects.first()
    assert schedule is not None
    url = reverse("admin:contributions_rateschedule_change", args=[schedule.pk])
    response = client.post(url, {"jkm_monthly": "1"})
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.jkm_monthly == 6_800
    delete = reverse("admin:contributions_rateschedule_delete", args=[schedule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:contributions_rateschedule_add")).status_code == 200


def test_admin_upload_imports_a_file(admin_user: Any, mine: Any) -> None:
    from django.utils import timezone

    content = (
        "reference,kpj,nik,amount,months,paid_at\n"
        f"UP-1,{mine.kpj_number},,{due(mine)},1,{timezone.localdate().isoformat()}\n"
    ).encode()
    upload = io.BytesIO(content)
    upload.name = "bank.csv"
    response = client_for(admin_user).post(
        reverse("admin:contributions_importreport_add"), {"channel": "bank", "file": upload}
    )
    assert response.status_code == 302
    report = ImportReport.objects.get()
    assert (report.rows, report.matched) == (1, 1)


def test_admin_upload_with_a_bad_header_shows_the_error(admin_user: Any) -> None:
    upload = io.BytesIO(b"x,y\n1,2\n")
    upload.name = "bad.csv"
    response = client_for(admin_user).post(
        reverse("admin:contributions_importreport_add"), {"channel": "bank", "file": upload}
    )
    assert response.status_code == 400 and b"reference,kpj,nik" in response.content


def test_admin_posts_a_sponsor_batch_and_lists_bad_rows(admin_user: Any, mine: Any) -> None:
    from enrollment.models import Partner

    sponsor = Partner.objects.create(code="SRT", name="Sertakan", kind="sponsor")
    client = client_for(admin_user)
    url = reverse("admin:contributions_sponsorbatch_add")
    bad = client.post(
        url,
        {"sponsor": sponsor.pk, "reference": "B1", "rows": f"{mine.kpj_number},1\n99999999999,1"},
    )
    assert bad.status_code == 400 and b"participant_unknown" in bad.content
    assert not Payment.objects.exists()
    good = client.post(
        url, {"sponsor": sponsor.pk, "reference": "B1", "rows": f"{mine.kpj_number},1"}
    )
    assert good.status_code == 302 and Payment.objects.count() == 1


# --- sponsor consents on the participant page -------------------------------------------------
def test_agent_records_a_consent_in_person_and_withdraws_it(
    agent: Any, other_agent: Any, mine: Any
) -> None:
    from contributions.models import SponsorConsent
    from enrollment.models import Partner

    sponsor = Partner.objects.create(code="SRT", name="Sertakan PT Maju", kind="sponsor")
    page = client_for(agent).get(reverse("enrollment:participant", args=[mine.pk]))
    assert 'data-testid="sponsor-consent-form"' in page.content.decode()
    url = reverse("contributions:sponsor_consent", args=[mine.pk])
    body = {"sponsor": sponsor.pk, "note": "Met at Pasar Baru, KTP seen", "confirmed": "on"}
    assert client_for(other_agent).post(url, body).status_code == 404  # not their participant
    unconfirmed = client_for(agent).post(url, {**body, "confirmed": ""})
    assert unconfirmed.status_code == 302 and not SponsorConsent.objects.exists()
    r = client_for(agent).post(url, body)
    assert r.status_code == 302 and r["Location"].endswith("#sponsors")
    consent = SponsorConsent.objects.get()
    assert (consent.method, consent.granted_by, consent.note) == (
        "in_person",
        agent,
        "Met at Pasar Baru, KTP seen",
    )
    page = client_for(agent).get(reverse("enrollment:participant", args=[mine.pk]))
    assert "Sertakan PT Maju" in page.content.decode()
    withdraw = reverse("contributions:sponsor_consent_withdraw", args=[mine.pk, sponsor.pk])
    assert client_for(agent).post(withdraw).status_code == 302
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None and consent.withdrawn_by == agent


def test_an_administrators_entry_is_an_approval(admin_user: Any, mine: Any) -> None:
    from contributions.models import SponsorConsent
    from enrollment.models import Partner

    sponsor = Partner.objects.create(code="APBD-PPU", name="Pemkab PPU (APBD)", kind="sponsor")
    url = reverse("contributions:sponsor_consent", args=[mine.pk])
    body = {"sponsor": sponsor.pk, "note": "SK Bupati 12/2026, list row 88", "confirmed": "on"}
    assert client_for(admin_user).post(url, body).status_code == 302
    assert SponsorConsent.objects.get().method == "admin"
