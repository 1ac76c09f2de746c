"""record_payment: the happy path, idempotency, every refusal, arrears and reactivation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.errors import PaymentConflict, PaymentError
from contributions.models import Coverage, LedgerEntry, Payment
from contributions.quotes import quote_payment
from contributions.rates import add_months
from contributions.services import record_payment
from tests.contributions.conftest import assert_ledger_consistent, at

pytestmark = pytest.mark.django_db


def this_month() -> date:
    return timezone.localdate().replace(day=1)


def cov(participant: Any) -> Coverage:
    return Coverage.objects.get(pk=participant.pk)


def test_registration_opens_a_coverage_row_in_grace(make_participant: Any) -> None:
    p = make_participant()
    c = cov(p)
    assert c.status == "grace" and c.paid_through is None and c.start_month == this_month()


def test_payment_activates_and_writes_one_ledger_entry(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    payment, created = pay(p, months=1)
    assert created
    c = cov(p)
    assert c.status == "active"
    assert c.paid_through == this_month() and c.active_since == this_month()
    assert c.continuous_months == 1 and c.balance == payment.amount
    entry = LedgerEntry.objects.get(participant=p)
    assert (entry.kind, entry.amount, entry.months, entry.period_start) == (
        "payment",
        payment.amount,
        1,
        this_month(),
    )
    assert_ledger_consistent()


def test_payment_found_by_kpj_or_nik(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    payment, _ = pay(p, months=1)
    second, created = record_payment(
        nik=p.nik,
        amount=payment.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference=payment.reference,
        paid_at=payment.paid_at,
    )
    assert (second.pk, created) == (payment.pk, False)
    by_kpj, created = record_payment(
        kpj=p.kpj_number,
        amount=payment.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference=payment.reference,
        paid_at=payment.paid_at,
    )
    assert (by_kpj.pk, created) == (payment.pk, False)


def test_replay_of_the_same_reference_is_one_payment(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    first, created1 = pay(p, months=2, reference="BANK-1")
    again, created2 = record_payment(
        participant=p,
        amount=first.amount,
        months=2,
        payer="participant",
        channel="bank",
        reference="BANK-1",
        paid_at=timezone.now(),  # a retry may carry another timestamp
    )
    assert created1 and not created2 and again.pk == first.pk
    assert Payment.objects.count() == 1 and LedgerEntry.objects.count() == 1
    assert cov(p).continuous_months == 2
    assert_ledger_consistent()


def test_replay_with_a_different_amount_is_a_conflict(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    first, _ = pay(p, months=1, reference="BANK-2")
    with pytest.raises(PaymentConflict) as err:
        record_payment(
            participant=p,
            amount=first.amount + 1,
            months=1,
            payer="participant",
            channel="bank",
            reference="BANK-2",
            paid_at=timezone.now(),
        )
    assert err.value.code == "reference_conflict"
    assert Payment.objects.count() == 1
    assert_ledger_consistent()


def test_same_reference_on_another_channel_is_another_payment(
    make_participant: Any, pay: Any
) -> None:
    p = make_participant()
    pay(p, reference="X-1", channel="bank")
    _, created = pay(p, reference="X-1", channel="retail")
    assert created and Payment.objects.count() == 2


def test_amount_mismatch_names_the_expected_amount(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    with pytest.raises(PaymentError) as err:
        pay(p, months=1, amount=16_801)
    assert err.value.code == "amount_mismatch"
    assert err.value.expected in (16_800, 8_400)
    assert "Rp" in str(err.value.message)
    assert not Payment.objects.exists()
    assert_ledger_consistent()


# paid a minute ago by a worker registered now: at noon in Jakarta, never across local midnight
@pytest.mark.clock("2026-12-10T05:00:00Z")
@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount": 0}, "amount_not_positive"),
        ({"amount": -16_800}, "amount_not_positive"),
        ({"months": 0}, "months_out_of_range"),
        ({"months": 13}, "months_out_of_range"),
        ({"paid_at": "future"}, "paid_at_future"),
        ({"kpj": "99999999999"}, "participant_unknown"),
        ({"reference": "  "}, "reference_invalid"),
        ({"channel": "cash"}, "channel_invalid"),
        ({"amount": True}, "amount_invalid"),
    ],
)
def test_bad_input_is_refused_and_the_ledger_stays_consistent(
    make_participant: Any, pay: Any, changes: dict[str, Any], code: str
) -> None:
    p = make_participant()
    pay(p, months=1)  # one good payment first: the refusal must not disturb it
    before = (Payment.objects.count(), LedgerEntry.objects.count(), cov(p).balance)
    kwargs: dict[str, Any] = {
        "participant": p,
        "amount": 16_800,
        "months": 1,
        "payer": "participant",
        "channel": "bank",
        "reference": "BAD-1",
        "paid_at": timezone.now() - timedelta(minutes=1),
    }
    if "kpj" in changes:
        kwargs.pop("participant")
    if changes.get("paid_at") == "future":
        changes = {"paid_at": timezone.now() + timedelta(days=1)}
    kwargs.update(changes)
    with pytest.raises(PaymentError) as err:
        record_payment(**kwargs)
    assert err.value.code == code
    assert (Payment.objects.count(), LedgerEntry.objects.count(), cov(p).balance) == before
    assert_ledger_consistent()


def test_grace_payment_pays_the_oldest_unpaid_month_first(make_participant: Any, pay: Any) -> None:
    start = add_months(this_month(), -2)
    p = make_participant(start_month=start)
    payment, _ = pay(p, months=1)
    assert payment.period_start == start
    assert cov(p).status == "grace" and cov(p).paid_through == start
    pay(p, months=2)
    c = cov(p)
    assert c.status == "active" and c.paid_through == this_month()
    assert c.active_since == start and c.continuous_months == 3
    assert_ledger_consistent()


def test_lapsed_participant_reactivates_from_the_month_paid(
    make_participant: Any, pay: Any
) -> None:
    start = add_months(this_month(), -8)
    p = make_participant(start_month=start)
    pay(p, months=1, paid_on=start + timedelta(days=9))
    assert cov(p).status == "lapsed" and cov(p).lapsed_since is not None
    payment, _ = pay(p, months=1)
    assert payment.period_start == this_month() and payment.reactivation
    c = cov(p)
    assert c.status == "active" and c.reactivations == 1 and c.lapsed_since is None
    assert c.active_since == this_month() and c.continuous_months == 1
    entry = LedgerEntry.objects.get(payment=payment)
    assert "reactivation" in entry.reason and "not covered" in entry.reason
    assert_ledger_consistent()


def test_never_paid_and_lapsed_pays_from_current_month(make_participant: Any, pay: Any) -> None:
    p = make_participant(start_month=add_months(this_month(), -6))
    payment, _ = pay(p, months=1)
    assert payment.period_start == this_month()
    assert cov(p).status == "active" and cov(p).reactivations == 0
    assert_ledger_consistent()


def test_twelve_months_in_advance(make_participant: Any, pay: Any) -> None:
    p = make_participant()
    pay(p, months=12)
    c = cov(p)
    assert c.paid_through == add_months(this_month(), 11) and c.continuous_months == 12
    _, created = pay(p, months=1)  # and one more month after those
    assert created and cov(p).paid_through == add_months(this_month(), 12)
    assert_ledger_consistent()


def test_discounted_and_full_months_mix_in_one_payment(make_participant: Any, pay: Any) -> None:
    """PP 50/2025, other sectors: March 2026 full (16,800), April 2026 discounted (8,400)."""
    if timezone.localdate() < date(2026, 3, 11):
        pytest.skip("needs a date after 10 March 2026")
    p = make_participant(start_month=date(2026, 3, 1))
    with pytest.raises(PaymentError) as err:
        record_payment(
            participant=p,
            amount=33_600,
            months=2,
            payer="participant",
            channel="bank",
            reference="MIX-1",
            paid_at=at(date(2026, 3, 10)),
            backdated=True,  # a quote of March 2026, whatever today is
        )
    assert err.value.expected == 25_200
    payment, _ = record_payment(
        participant=p,
        amount=25_200,
        months=2,
        payer="participant",
        channel="bank",
        reference="MIX-1",
        paid_at=at(date(2026, 3, 10)),
        backdated=True,
    )
    assert payment.period_start == date(2026, 3, 1)


def test_jht_participant_pays_jht_too(make_participant: Any, pay: Any) -> None:
    p = make_participant(jht=True)
    payment, _ = pay(p, months=1)
    assert payment.amount in (36_800, 28_400)  # 28,400 in a PP 50/2025 month


# --- the payment date window (issue: a payment dated 0001-01-01 was accepted) --------------------
def test_payment_dates_outside_the_window_are_refused_with_their_code(
    make_participant: Any, settings: Any
) -> None:
    p = make_participant()
    settings.PAYMENT_MAX_AGE_DAYS = 30
    now = timezone.now()
    cases = {
        "paid_at_too_old": [
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 0),  # noqa: DTZ001 - naive on purpose: read as local time
            now - timedelta(days=31),
        ],
        "paid_at_future": [now + timedelta(minutes=5)],
        "paid_at_before_registration": [p.created_at - timedelta(days=1)],
    }
    for code, dates in cases.items():
        for n, paid_at in enumerate(dates):
            with pytest.raises(PaymentError) as err:
                record_payment(
                    participant=p,
                    amount=16_800,
                    months=1,
                    payer="participant",
                    channel="bank",
                    reference=f"W-{code}-{n}",
                    paid_at=paid_at,
                )
            assert err.value.code == code, (paid_at, err.value)
            if code == "paid_at_too_old" and n == 2:
                oldest = timezone.localdate(now) - timedelta(days=30)
                assert err.value.details["oldest"] == oldest.isoformat()
                assert f"{oldest:%d-%m-%Y}" in str(err.value.message)
    assert not Payment.objects.exists() and not LedgerEntry.objects.exists()


def test_a_replay_of_an_old_payment_still_finds_it(make_participant: Any, settings: Any) -> None:
    """A re-imported old statement changes nothing: the replay is answered before the window."""
    p = make_participant(start_month=add_months(this_month(), -3))
    paid_at = timezone.now() - timedelta(days=40)
    amount = quote_payment(p, cov(p), months=1, as_of=timezone.localdate(paid_at)).amount
    first, created = record_payment(
        participant=p,
        amount=amount,
        months=1,
        payer="participant",
        channel="bank",
        reference="OLD-1",
        paid_at=paid_at,
        backdated=True,
    )
    assert created
    again, created = record_payment(
        participant=p,
        amount=amount,
        months=1,
        payer="participant",
        channel="bank",
        reference="OLD-1",
        paid_at=paid_at,
    )
    assert not created and again.pk == first.pk
