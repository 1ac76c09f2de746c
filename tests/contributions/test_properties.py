"""Properties (hypothesis, bounded) of the rate quote, the ledger derivation and the coverage
status, against the real rate tables in the test database:
- a quote is non-negative whole Rupiah, its programme parts sum to its total, it grows with the
  income level and with the months (a longer quote starts with the shorter one);
- the ledger's derived facts agree with a plain month-set model (balance = sum of entries,
  paid-through = last covered month, runs = reactivations + 1);
- the status from paid-through (coverage.status_for, a set-based threshold) agrees with the
  lapse date stated directly (lapse_date), on every day;
- through the real services, any mix of payments and reversals leaves Coverage equal to its
  ledger (balance = sum of entries, check_coverage finds nothing)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contributions import coverage as rules
from contributions.ledger import EntryRow, check_coverage, derive, facts_for
from contributions.models import Coverage, LedgerEntry, Payment
from contributions.rates import PROGRAMMES, add_months, income_levels, quote_contribution

pytestmark = pytest.mark.usefixtures("refdata")

BOUNDED = settings(
    max_examples=120, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip

months_2025_2027 = st.integers(0, 35).map(lambda i: add_months(date(2025, 1, 1), i))
programme_sets = st.sampled_from([["JKK", "JKM"], ["JKK", "JKM", "JHT"]])
sectors = st.sampled_from(["other", "transport"])


@pytest.mark.django_db
@BOUNDED
@given(
    first=months_2025_2027,
    months=st.integers(1, 12),
    programmes=programme_sets,
    sector=sectors,
    level_pick=st.integers(0, 10_000),
)
def test_quote_is_whole_non_negative_and_adds_up(
    first: date, months: int, programmes: list[str], sector: str, level_pick: int
) -> None:
    levels = income_levels(first)
    income = levels[level_pick % len(levels)]
    q = quote_contribution(
        declared_income=income, programmes=programmes, months=months, first_month=first,
        sector=sector,
    )  # fmt: skip
    assert len(q.months) == months
    assert [m.month for m in q.months] == [add_months(first, i) for i in range(months)]
    for m in q.months:
        assert set(m.amounts) == set(programmes)
        assert all(isinstance(a, int) and a >= 0 for a in m.amounts.values())
    assert sum(q.per_programme.values()) == q.total == sum(m.total for m in q.months)
    assert [p for p in PROGRAMMES if p in q.per_programme] == q.programmes


@pytest.mark.django_db
@BOUNDED
@given(
    first=months_2025_2027,
    months=st.integers(1, 11),
    programmes=programme_sets,
    sector=sectors,
    picks=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
)
def test_quote_grows_with_income_level_and_months(
    first: date, months: int, programmes: list[str], sector: str, picks: tuple[int, int]
) -> None:
    levels = income_levels(first)
    low, high = sorted(levels[p % len(levels)] for p in picks)

    def total(income: int, n: int) -> Any:
        return quote_contribution(
            declared_income=income, programmes=programmes, months=n, first_month=first,
            sector=sector,
        )  # fmt: skip

    assert total(low, months).total <= total(high, months).total
    shorter, longer = total(low, months), total(low, months + 1)
    assert longer.total >= shorter.total
    assert longer.months[:months] == shorter.months  # the same months cost the same
    assert longer.total == shorter.total + longer.months[-1].total


# --- the ledger, as data ------------------------------------------------------------------------
payments = st.lists(
    st.tuples(
        st.integers(0, 30), st.integers(1, 12), st.booleans()
    ),  # (month index, months, reversed)
    max_size=12,
)


def _rows(spec: list[tuple[int, int, bool]]) -> list[EntryRow]:
    rows: list[EntryRow] = []
    ids = itertools.count(1)
    for index, months, reversed_ in spec:
        start = add_months(date(2024, 1, 1), index)
        pid = next(ids)
        rows.append(EntryRow(pid, LedgerEntry.Kind.PAYMENT, 16_800 * months, months, start, None))
        if reversed_:
            rows.append(
                EntryRow(
                    next(ids), LedgerEntry.Kind.REVERSAL, -16_800 * months, -months, start, pid
                )
            )
    return rows


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(spec=payments)
def test_ledger_facts_match_a_month_set_model(spec: list[tuple[int, int, bool]]) -> None:
    rows = _rows(spec)
    facts = derive(rows)
    assert facts.balance == sum(r.amount for r in rows)
    covered = sorted(
        {
            add_months(add_months(date(2024, 1, 1), i), k)
            for i, n, rev in spec
            if not rev
            for k in range(n)
        }
    )
    if not covered:
        assert facts.paid_through is None and facts.continuous_months == 0
        return
    assert facts.paid_through == covered[-1]
    runs = 1 + sum(1 for a, b in itertools.pairwise(covered) if add_months(a, 1) != b)
    assert facts.reactivations == runs - 1
    last_run_start = covered[-1]
    while add_months(last_run_start, -1) in covered:
        last_run_start = add_months(last_run_start, -1)
    assert facts.active_since == last_run_start
    assert facts.continuous_months == rules.months_between(last_run_start, covered[-1]) + 1


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    start=st.integers(0, 24).map(lambda i: add_months(date(2024, 1, 1), i)),
    paid=st.one_of(st.none(), st.integers(0, 30)),
    day=st.integers(0, 1400).map(lambda d: date(2024, 1, 1) + timedelta(days=d)),
)
def test_status_from_paid_through_agrees_with_the_lapse_date(
    start: date, paid: int | None, day: date
) -> None:
    paid_through = None if paid is None else add_months(start, paid - 1) if paid else None
    status = rules.status_for(paid_through=paid_through, start_month=start, as_of=day)
    first_unpaid = rules.next_unpaid(paid_through, start)
    if first_unpaid > rules.month_start(day):
        expected = rules.ACTIVE  # this month is paid (or coverage starts later)
    elif day >= rules.lapse_date(first_unpaid):
        expected = rules.LAPSED
    else:
        expected = rules.GRACE
    assert status == expected
    if status == rules.ACTIVE:
        assert rules.arrears_months(paid_through, start, day) == 0
    if status != rules.LAPSED:
        assert (
            rules.first_month_to_pay(paid_through=paid_through, start_month=start, as_of=day)
            == first_unpaid
        )


# --- the ledger, through the services -----------------------------------------------------------
_serials = itertools.count(3000)


@pytest.mark.django_db
@settings(
    max_examples=12, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(steps=st.lists(st.one_of(st.integers(1, 4), st.just(0)), min_size=1, max_size=6))
def test_any_payments_and_reversals_keep_coverage_equal_to_the_ledger(
    make_participant: Any, pay: Any, settings: Any, steps: list[int]
) -> None:
    """steps: n > 0 pays n months, 0 reverses the latest live payment."""
    from contributions.services import reverse_payment
    from tests.conftest import nik_for

    settings.NOTIFY_ON_PAYMENT = settings.NOTIFY_ON_REGISTRATION = False
    p = make_participant(nik=nik_for(serial=next(_serials)))
    for step in steps:
        if step:
            pay(p, months=step)
            continue
        live = (
            Payment.objects.filter(
                participant=p, entries__kind="payment", entries__reversed_by__isnull=True
            )
            .order_by("-id")
            .first()
        )
        if live is not None:
            reverse_payment(payment=live, reason="property test", user=None)
    cov = Coverage.objects.get(pk=p.pk)
    entries = list(LedgerEntry.objects.filter(participant=p).values_list("amount", flat=True))
    assert cov.balance == sum(entries)
    facts = facts_for(p.pk)
    assert (cov.paid_through, cov.balance) == (facts.paid_through, facts.balance)
    assert list(check_coverage(as_of=None)) == []
