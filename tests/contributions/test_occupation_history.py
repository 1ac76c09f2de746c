"""A month is priced by the occupation held in it (PP 50/2025 discounts by sector): a farmer who
becomes an online driver in May 2026 pays February-March as a farmer (full: the other sectors'
discount starts in April) and May on as a driver; the SQL programme split reads the same history
(rules_sql.held_sector) as the quote (rates.quote_contribution's sector_history)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from django.db import connection

from contributions import rules_sql as q
from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.rates import add_months, quote_contribution
from enrollment.models import OccupationPeriod, PayerType
from enrollment.services import sector_history, update_participant

pytestmark = pytest.mark.django_db

FULL, HALF = 16_800, 8_400


@pytest.mark.clock("2026-05-10T03:00:00Z")
def test_arrears_are_priced_by_the_occupation_held_then(make_participant: Any) -> None:
    p = make_participant(start_month=date(2026, 2, 1), occupation="petani")
    update_participant(participant=p, occupation="ojol", today=date(2026, 5, 10))
    update_participant(participant=p, occupation="kurir", today=date(2026, 5, 11))  # same month
    assert list(OccupationPeriod.objects.values_list("until_month", "occupation_id")) == [
        (date(2026, 5, 1), "petani")
    ]
    assert sector_history([p.pk]) == {p.pk: ((date(2026, 5, 1), "other"),)}
    cov = Coverage.objects.get(pk=p.pk)
    due = quote_payment(p, cov, months=4, as_of=date(2026, 5, 10))
    # February, March: a farmer's months before April (full); April: the farmer's discount;
    # May: a courier's (transport) discount
    assert due.first_month == date(2026, 2, 1)
    assert due.amount == FULL + FULL + HALF + HALF
    # were every month priced by the current occupation, February and March would be half
    now_only = quote_contribution(
        declared_income=1_000_000,
        programmes=["JKK", "JKM"],
        months=4,
        first_month=date(2026, 2, 1),
        sector="transport",
    )
    assert now_only.total == 4 * HALF  # fmt: skip


def test_the_sql_split_reads_the_same_history(make_participant: Any) -> None:
    """Generated occupation histories: the SQL split of many (first month, months, payer) keys
    per participant equals the quote with that participant's history."""
    rng = random.Random(5)
    people = []
    for _i in range(8):
        p = make_participant(
            start_month=date(2025, 1, 1), occupation=rng.choice(["petani", "ojol"])
        )
        months = sorted(rng.sample(range(1, 30), rng.randrange(1, 4)))
        for m in months:  # earlier occupations, each until a month of 2025-2027
            OccupationPeriod.objects.create(
                participant=p, until_month=add_months(date(2025, 1, 1), m),
                occupation_id=rng.choice(["petani", "ojol", "kurir", "pedagang"]),
            )  # fmt: skip
        people.append(p)
    keys = []
    for p in people:
        for _i in range(25):
            first = add_months(date(2025, 6, 1), rng.randrange(24))
            keys.append((p.pk, first, rng.randrange(1, 13), rng.choice(PayerType.values)))
    # read as the rollup build reads them: from its temporary copies of the schedule, the
    # discounts and the history (rules_sql.copy_split_sources), with the current sector known
    split = q.programme_split(
        period_start="k.ps", months="k.n", declared_income="1000000", jht="false",
        sector="k.sector", payer_type="k.payer", history_pid="k.pid",
        sources=q.copied_sources("t_split"),
    )  # fmt: skip
    sql = f"""
        SELECT sp.jkk + sp.jkm
        FROM unnest(%s::bigint[], %s::date[], %s::int[], %s::text[], %s::text[])
             WITH ORDINALITY k(pid, ps, n, payer, sector, i)
        CROSS JOIN LATERAL ({split}) sp
        ORDER BY k.i"""  # noqa: S608
    sectors = {p.pk: p.occupation.sector for p in people}
    with connection.cursor() as cursor:
        for statement in q.copy_split_sources("t_split"):
            cursor.execute(statement)
        rows = [(*key, sectors[key[0]]) for key in keys]
        cursor.execute(sql, [list(c) for c in zip(*rows, strict=True)])
        got = [r[0] for r in cursor.fetchall()]
        cursor.execute(q.drop_split_sources("t_split"))
    histories = sector_history([p.pk for p in people])
    differs = 0
    for (pid, first, months, payer), total in zip(keys, got, strict=True):
        common = {"declared_income": 1_000_000, "programmes": ["JKK", "JKM"], "months": months,
                  "first_month": first, "sector": sectors[pid], "payer_type": payer}  # fmt: skip
        want = quote_contribution(**common, sector_history=histories.get(pid, ())).total
        assert total == want, (pid, first, months, payer)
        differs += want != quote_contribution(**common).total
    assert differs  # the history changed some prices
