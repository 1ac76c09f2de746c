"""PP 50/2025 Pasal 4: what a participant paid at the full rate for months the discount later
covered counts toward the following months. A worker paid November 2025 - October 2026 before
the discount was in the rate book; the command credits the excess, pays whole months from it,
leaves the rest for the next payment; the ledger stays the money received; twice = once."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions.errors import PaymentError, ReversalError
from contributions.models import ContributionCredit, Coverage, LedgerEntry, Payment, RateDiscount
from contributions.quotes import quote_payment
from contributions.rates import clear_rate_book, seed_rates
from contributions.services import record_payment, reverse_payment
from tests.conftest import login_as
from tests.contributions.conftest import assert_ledger_consistent

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-06-10T03:00:00Z")]
FULL, HALF = 16_800, 8_400


def _paid_before_the_discount(make_participant: Any) -> tuple[Any, Payment]:
    p = make_participant(start_month=date(2025, 11, 1), occupation="petani")
    RateDiscount.objects.all().delete()  # November 2025: PP 50/2025 not yet in the rate book
    clear_rate_book()
    paid_at = timezone.make_aware(datetime.combine(date(2025, 11, 20), time(10)))
    payment, _ = record_payment(participant=p, amount=12 * FULL, months=12, payer="participant",
                                channel="bank", reference="EARLY-12", paid_at=paid_at,
                                backdated=True)  # fmt: skip
    seed_rates()  # the discount is published
    return p, payment


def test_months_paid_before_the_discount_become_credit_for_the_next_months(
    make_participant: Any, admin_user: Any
) -> None:
    p, early = _paid_before_the_discount(make_participant)
    # November 2025 - March 2026 full, April - October 2026 half: 58,800 paid too much
    out = io.StringIO()
    call_command("grant_discount_credits", stdout=out)
    assert "1 payment(s), Rp 58800 to credit" in out.getvalue() and "dry run" in out.getvalue()
    assert not ContributionCredit.objects.exists()

    out = io.StringIO()
    call_command("grant_discount_credits", "--apply", stdout=out)
    # November, December 2026 (half), January, February 2027 (full): 8,400 left
    assert "granted 1 credit(s); 4 month(s) paid from credit" in out.getvalue()
    cov = Coverage.objects.get(pk=p.pk)
    assert (cov.paid_through, cov.credit, cov.balance) == (date(2027, 2, 1), HALF, 12 * FULL)
    from_credit = Payment.objects.filter(participant=p, channel="credit").order_by("period_start")
    assert [(x.period_start, x.amount) for x in from_credit] == [
        (date(2026, 11, 1), HALF), (date(2026, 12, 1), HALF),
        (date(2027, 1, 1), FULL), (date(2027, 2, 1), FULL),
    ]  # fmt: skip
    grant = ContributionCredit.objects.get(kind="grant")
    assert (grant.payment_id, grant.amount) == (early.pk, 12 * FULL - (5 * FULL + 7 * HALF))
    call_command("check_ledger", "--as-of", "2026-06-10")
    assert_ledger_consistent()
    page = login_as(Client(), admin_user).get(reverse("enrollment:participant", args=[p.pk]))
    assert b'data-testid="credit"' in page.content and b"8.400" in page.content

    # the rest is taken off the next payment: March 2027 costs 16,800, 8,400 to pay
    due = quote_payment(p, cov, months=1, as_of=date(2026, 6, 10))
    assert (due.first_month, due.amount, due.credit, due.price) == (
        date(2027, 3, 1), HALF, HALF, FULL)  # fmt: skip
    with pytest.raises(PaymentError) as wrong:
        record_payment(participant=p, amount=FULL, months=1, payer="participant", channel="bank",
                       reference="NEXT-0", paid_at=timezone.now())  # fmt: skip
    assert wrong.value.code == "amount_mismatch" and wrong.value.details["expected"] == HALF
    nxt, _ = record_payment(participant=p, amount=HALF, months=1, payer="participant",
                            channel="bank", reference="NEXT-1", paid_at=timezone.now())  # fmt: skip
    cov.refresh_from_db()
    assert (cov.paid_through, cov.credit) == (date(2027, 3, 1), 0)
    assert nxt.credits.get().amount == -HALF
    call_command("check_ledger", "--as-of", "2026-06-10")

    # twice = once
    out = io.StringIO()
    call_command("grant_discount_credits", "--apply", stdout=out)
    assert "granted 0 credit(s)" in out.getvalue()
    assert ContributionCredit.objects.filter(kind="grant").count() == 1

    # a reversed payment gives its credit back; months paid from credit are not reversible
    reverse_payment(payment=nxt, reason="bank recall", user=None)
    cov.refresh_from_db()
    assert (cov.paid_through, cov.credit) == (date(2027, 2, 1), HALF)
    with pytest.raises(ReversalError) as refused:
        reverse_payment(payment=from_credit.last(), reason="test", user=None)
    assert refused.value.code == "not_reversible"
    call_command("check_ledger", "--as-of", "2026-06-10")
    call_command("check_ledger", "--as-of", "2026-06-10")
    assert_ledger_consistent()


def test_credit_is_never_edited_and_external_channels_cannot_claim_it(
    make_participant: Any,
) -> None:
    p, _early = _paid_before_the_discount(make_participant)
    call_command("grant_discount_credits", "--apply", stdout=io.StringIO())
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE contributions_contributioncredit SET amount = amount + 1")
    with pytest.raises(PaymentError) as refused:
        record_payment(participant=p, amount=FULL, months=1, payer="participant",
                       channel="credit", reference="FAKE", paid_at=timezone.now())  # fmt: skip
    assert refused.value.code == "channel_invalid"
    assert LedgerEntry.objects.filter(kind="adjustment", participant=p).count() == 4


def test_a_credit_that_pays_whole_months_is_never_a_payment_of_nothing(
    make_participant: Any,
) -> None:
    """Credit of Rp 16,800 while June 2026 costs 8,400: a quote does not use it (no Rp 0 to
    pay on any path); the daily refresh pays June and July from it. A payment whose excess became
    credit is not reversible."""
    from contributions.tasks import refresh_coverage_statuses

    p = make_participant(start_month=date(2026, 5, 1), occupation="petani")
    may, _ = record_payment(participant=p, amount=HALF, months=1, payer="participant",
                            channel="bank", reference="MAY", paid_at=timezone.now())  # fmt: skip
    with transaction.atomic():
        ContributionCredit.objects.create(participant=p, kind="grant", amount=FULL, payment=may,
                                          reason="test")  # fmt: skip
        Coverage.objects.filter(pk=p.pk).update(credit=FULL)
    cov = Coverage.objects.get(pk=p.pk)
    due = quote_payment(p, cov, months=1, as_of=date(2026, 6, 10))
    assert (due.first_month, due.amount, due.credit) == (date(2026, 6, 1), HALF, 0)
    result = refresh_coverage_statuses.run(as_of="2026-06-10")
    assert result["months_paid_from_credit"] == 2
    cov.refresh_from_db()
    assert cov.paid_through == date(2026, 7, 1)
    with pytest.raises(ReversalError) as refused:
        reverse_payment(payment=may, reason="test", user=None)
    assert refused.value.code == "not_reversible"
    call_command("check_ledger", "--as-of", "2026-06-10")
