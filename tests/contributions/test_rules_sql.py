"""The SQL fragments of contributions.rules_sql equal the Python rules they stand for, on
generated histories: every status, lapse day, calendar day, paid-through month and programme
split computed both ways, by PostgreSQL and by contributions.coverage / ledger / rates."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection

from contributions import coverage as rules
from contributions import rules_sql as q
from contributions.due_dates import due_dates_param
from contributions.rates import add_months, income_levels, quote_contribution
from enrollment.models import PayerType

STATUS = {q.ACTIVE_CODE: rules.ACTIVE, q.GRACE_CODE: rules.GRACE, q.LAPSED_CODE: rules.LAPSED}


def _month(rng: random.Random, low: date, high: date) -> date:
    return add_months(low, rng.randrange(rules.months_between(low, high) + 1))


def _histories(seed: int, n: int) -> list[tuple[date | None, date, date]]:
    """(paid_through, start_month, as_of): a start month, maybe some months paid (some ahead of
    the day, some far behind it), and a day that falls anywhere around them, often on the
    month's due date (a holiday or weekend moves it) and the days next to it."""
    rng = random.Random(seed)
    out = []
    for _i in range(n):
        start = _month(rng, date(2014, 1, 1), date(2027, 12, 1))
        paid = None if rng.random() < 0.3 else add_months(start, rng.randrange(0, 30))
        anchor = add_months(paid or start, rng.randrange(-2, 9))
        if rng.random() < 0.5:
            as_of = rules.due_date(anchor) + timedelta(days=rng.choice((-1, 0, 1, 2)))
        else:
            as_of = anchor + timedelta(days=rng.randrange(28) + rng.choice((0, 0, 1, 2)))
        out.append((paid, start, as_of))
    return out


@pytest.mark.parametrize(
    "due_day, grace, weekends", [(15, 3, True), (15, 3, False), (1, 0, True), (28, 6, True)]
)
def test_status_fragments_equal_status_for(
    db: Any, settings: Any, due_day: int, grace: int, weekends: bool
) -> None:
    """status, is_lapsed, is_behind and lapse_date agree with coverage.status_for and
    coverage.lapse_date on 3,000 generated (paid-through, start month, day) triples - days
    around the due dates of 2014-2028, the seeded 2026 holiday calendar among them - under the
    default due day and grace, with and without weekends moving the due date, and two others
    (the settings are read at every call)."""
    settings.BPU_DUE_DAY, settings.BPU_GRACE_MONTHS = due_day, grace
    settings.BPU_DUE_SKIPS_WEEKENDS = weekends
    cases = _histories(seed=due_day * 100 + grace, n=3_000)
    months = [rules.month_start(d) for _p, _s, d in cases]
    thresholds = [rules.lapse_threshold(d) for _p, _s, d in cases]
    nu = q.next_unpaid("v.pt", "v.sm")
    sql = f"""
        SELECT {nu}, {q.status(nu, "v.m", "v.thr")}, {q.is_lapsed("v.pt", "v.sm", "v.thr")},
               {q.is_behind("v.pt", "v.sm", "v.m")},
               {q.lapse_date(nu, "%(grace)s", "%(due_dates)s", "%(due)s")}
        FROM unnest(%(pt)s::date[], %(sm)s::date[], %(m)s::date[], %(thr)s::date[])
             WITH ORDINALITY v(pt, sm, m, thr, i)
        ORDER BY v.i"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "pt": [p for p, _s, _d in cases],
                "sm": [s for _p, s, _d in cases],
                "m": months,
                "thr": thresholds,
                "grace": grace,
                # every lapse month of the cases (the refresh needs them up to today only)
                "due_dates": due_dates_param(add_months(max(d for *_x, d in cases), grace + 40)),
                "due": due_day,
            },
        )
        rows = cursor.fetchall()
    assert len(rows) == len(cases)
    seen = set()
    for (paid, start, as_of), (next_month, state, lapsed, behind, lapse_day) in zip(
        cases, rows, strict=True
    ):
        want = rules.status_for(paid_through=paid, start_month=start, as_of=as_of)
        seen.add(want)
        case = (paid, start, as_of)
        assert next_month == rules.next_unpaid(paid, start), case
        assert state == want, case
        assert lapsed == (want == rules.LAPSED), case
        assert behind == (want != rules.ACTIVE), case
        assert lapse_day == rules.lapse_date(next_month), case
    assert seen == {rules.ACTIVE, rules.GRACE, rules.LAPSED}  # the histories reach every status
    moved = {rules.lapse_date(rules.next_unpaid(p, s)) for p, s, _d in cases}
    assert any(d.day != due_day + 1 for d in moved)  # some lapse days were moved by the calendar


@pytest.mark.parametrize("first", [date(2026, 1, 1), date(2025, 11, 20), date(2027, 2, 10)])
def test_the_calendar_form_equals_status_for_on_every_day(db: Any, first: date) -> None:
    """status_by_calendar over coverage.status_calendar gives status_for on every day of a
    range, for every next unpaid month from far below the calendar to far above it (months
    outside it: lapsed below, active above, as the rollups read them)."""
    last = first + timedelta(days=200)
    calendar = {n: (g, lp) for n, g, lp in rules.status_calendar(first, last)}
    low, high = min(calendar), max(calendar)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    cases = []
    for n in (add_months(low, k) for k in range(-4, rules.months_between(low, high) + 5)):
        grace_from, lapsed_from = calendar.get(
            n, (first, first) if n < low else (last + timedelta(days=1),) * 2
        )
        cases += [(n, d, grace_from, lapsed_from) for d in days]
    sql = f"""
        SELECT {q.status_by_calendar("v.d", "v.g", "v.l")}
        FROM unnest(%s::date[], %s::date[], %s::date[]) WITH ORDINALITY v(d, g, l, i)
        ORDER BY v.i"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [[c[1] for c in cases], [c[2] for c in cases], [c[3] for c in cases]])
        codes = [row[0] for row in cursor.fetchall()]
    assert len(codes) == len(cases)
    for (n, day, _g, _l), code in zip(cases, codes, strict=True):
        want = rules.status_for(paid_through=add_months(n, -1), start_month=n, as_of=day)
        assert STATUS[code] == want, (n, day)


@pytest.mark.django_db
def test_paid_through_of_the_entries_equals_the_ledger(make_participant: Any, pay: Any) -> None:
    """Generated payment histories posted through the services, some payments reversed: the
    latest live entry's paid_through / next_unpaid_after in SQL equal ledger.facts_for."""
    from contributions.ledger import facts_for
    from contributions.models import LedgerEntry
    from contributions.services import reverse_payment

    rng = random.Random(7)
    people = []
    for _i in range(6):
        participant = make_participant(start_month=date(2025, 1, 1))
        day = date(2025, 1, 3)
        payments = []
        for _k in range(rng.randrange(1, 5)):
            day += timedelta(days=rng.randrange(20, 120))
            payment, _created = pay(participant, months=rng.randrange(1, 6), paid_on=day)
            payments.append(payment)
        if len(payments) > 1 and rng.random() < 0.7:
            reverse_payment(payment=payments[-1], reason="bank recall", user=None)
        people.append(participant)
    t = q.T
    sql = f"""
        SELECT e.participant_id, max({q.paid_through("e")}), max({q.next_unpaid_after("e")})
        FROM {t.ledger} e
        WHERE e.kind = %s AND e.participant_id = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM {t.ledger} r
                          WHERE r.participant_id = e.participant_id AND r.reverses_id = e.id)
        GROUP BY e.participant_id"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [LedgerEntry.Kind.PAYMENT, [p.pk for p in people]])
        got = {pid: (pt, nu) for pid, pt, nu in cursor.fetchall()}
    assert LedgerEntry.objects.filter(participant__in=people, kind="reversal").exists()
    for participant in people:
        facts = facts_for(participant.pk)
        assert facts.paid_through is not None
        assert got[participant.pk] == (facts.paid_through, add_months(facts.paid_through, 1))


@pytest.mark.django_db
def test_programme_split_equals_the_quote(refdata: Any) -> None:
    """programme_split equals rates.quote_contribution per programme on 400 generated
    (first month, months, income level, JHT, sector) keys, across schedule changes and the
    seeded sector discounts (PP 50/2025), and a generated 2019 schedule and 33 % discount whose
    odd rates and levels need the half-up rounding at both steps."""
    from contributions.models import IncomeLevel, RateDiscount, RateSchedule

    odd = RateSchedule.objects.create(
        effective_from=date(2019, 1, 1), jkk_rate_bp=89, jkm_monthly=6_801, jht_rate_bp=199,
        source="test",
    )  # fmt: skip
    IncomeLevel.objects.bulk_create(
        IncomeLevel(schedule=odd, amount=a, income_from=a, income_to=a + 99_999)
        for a in (1_050_050, 1_234_567, 2_345_678)
    )
    RateDiscount.objects.create(
        name="generated 33", sector="transport", programmes="JKK, JKM, JHT", percent=33,
        first_month=date(2019, 1, 1), last_month=date(2019, 12, 1), source="test",
    )  # fmt: skip
    rng = random.Random(11)
    keys = [
        (date(2019, 3, 1), 2, level, True, "transport", "self")
        for level in income_levels(date(2019, 3, 1))
    ]
    for _i in range(400):
        first = _month(rng, date(2015, 7, 1), date(2027, 12, 1))
        keys.append(
            (
                first,
                rng.randrange(1, 13),
                rng.choice(income_levels(first)),
                rng.random() < 0.5,
                rng.choice(("transport", "other")),
                rng.choice(PayerType.values),
            )
        )
    split = q.programme_split(
        period_start="k.ps",
        months="k.n",
        declared_income="k.inc",
        jht="k.jht",
        sector="k.sector",
        payer_type="k.payer",
    )
    sql = f"""
        SELECT sp.jkk, sp.jkm, sp.jht
        FROM unnest(%s::date[], %s::int[], %s::bigint[], %s::bool[], %s::text[], %s::text[])
             WITH ORDINALITY k(ps, n, inc, jht, sector, payer, i)
        CROSS JOIN LATERAL ({split}) sp
        ORDER BY k.i"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(col) for col in zip(*keys, strict=True)])
        rows = cursor.fetchall()
    assert len(rows) == len(keys)
    discounted = budget_in_discount = 0
    for (first, months, income, jht, sector, payer), (jkk, jkm, jht_amount) in zip(
        keys, rows, strict=True
    ):
        quote = quote_contribution(
            declared_income=income,
            programmes=["JKK", "JKM", "JHT"] if jht else ["JKK", "JKM"],
            months=months,
            first_month=first,
            sector=sector,
            payer_type=payer,
        )
        per = quote.per_programme
        assert (jkk, jkm, jht_amount) == (per["JKK"], per["JKM"], per.get("JHT", 0)), (
            first,
            months,
            income,
            jht,
            sector,
            payer,
        )
        full = quote_contribution(
            declared_income=income, programmes=["JKK", "JKM"], months=1, first_month=first
        )
        discounted += full.per_programme["JKM"] * months > per["JKM"]
        in_window = date(2026, 1, 1) <= first <= date(2027, 3, 1)
        budget_in_discount += in_window and payer in ("apbd", "apbn", "village_fund")
    assert discounted  # some keys fall in a discount period
    assert budget_in_discount  # and some of those are budget-paid (no PP 50/2025 discount)
