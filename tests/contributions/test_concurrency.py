"""Concurrent posting with two real database connections (threads, transactional tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from contributions.errors import PaymentError
from contributions.models import Coverage, LedgerEntry, Payment
from contributions.quotes import quote_payment
from contributions.rates import add_months
from contributions.services import record_payment
from enrollment.models import Participant
from enrollment.services import register_participant
from tests.conftest import nik_for, registration_data
from tests.contributions.conftest import assert_ledger_consistent

pytestmark = pytest.mark.usefixtures("tx_refdata")


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads (each its own DB connection) released by one barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # the test inspects it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def participant() -> Participant:
    return register_participant(**registration_data(nik=nik_for(serial=4242)))


def amount_for(p: Participant, months: int = 1) -> int:
    cov = Coverage.objects.get(pk=p.pk)
    return quote_payment(p, cov, months=months, as_of=timezone.localdate()).amount


def post(p: Participant, reference: str, amount: int) -> Callable[[], Any]:
    return lambda: record_payment(
        participant=p,
        amount=amount,
        months=1,
        payer="participant",
        channel="ewallet",
        reference=reference,
        paid_at=timezone.now(),
    )


@pytest.mark.parametrize("attempt", range(3))
def test_same_reference_posted_concurrently_creates_one_payment(attempt: int) -> None:
    p = participant()
    amount = amount_for(p)
    results = run_together(post(p, "EW-1", amount), post(p, "EW-1", amount))
    assert not [r for r in results if isinstance(r, Exception)], results
    created = sorted(r[1] for r in results)
    assert created == [False, True]
    assert results[0][0].pk == results[1][0].pk
    assert Payment.objects.count() == 1 and LedgerEntry.objects.count() == 1
    assert Coverage.objects.get(pk=p.pk).continuous_months == 1
    assert_ledger_consistent()


def test_same_reference_with_different_amounts_concurrently_one_wins() -> None:
    p = participant()
    amount = amount_for(p)
    results = run_together(post(p, "EW-2", amount), post(p, "EW-2", amount + 100))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], PaymentError)
    assert errors[0].code in ("reference_conflict", "amount_mismatch")
    assert Payment.objects.count() == 1
    assert_ledger_consistent()


# Two one-month payments race: either may pay this month or the next, so both months must cost
# the same - a day in a month with no PP 50/2025 discount boundary after it (it was skipped on
# the days of March and December 2026).
@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_two_references_for_one_participant_concurrently_lose_no_update() -> None:
    p = participant()
    this_month = timezone.localdate().replace(day=1)
    amount = amount_for(p)
    cov = Coverage.objects.get(pk=p.pk)
    assert quote_payment(p, cov, months=2, as_of=timezone.localdate()).amount == 2 * amount
    results = run_together(post(p, "EW-3", amount), post(p, "EW-4", amount))
    assert all(r[1] for r in results), results
    c = Coverage.objects.get(pk=p.pk)
    assert c.paid_through == add_months(this_month, 1) and c.continuous_months == 2
    periods = sorted(Payment.objects.values_list("period_start", flat=True))
    assert periods == [this_month, add_months(this_month, 1)]
    assert_ledger_consistent()
