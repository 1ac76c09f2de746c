"""The demo (`manage.py seed_demo`): workers of the national shape registered over 18 months,
their payments true to the status rules (lapses, reactivations), the named agents' portfolios,
commission statements, follow-up outcomes, rollups and targets scaled to the demo."""

from __future__ import annotations

import io
import random
from collections import Counter
from datetime import date
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Max, Min, Sum
from django.utils import timezone

from contributions import coverage as rules
from contributions import shape as payer_shape
from contributions.commissions.models import CommissionStatement
from contributions.follow_up.models import FollowUpOutcome
from contributions.models import Coverage, LedgerEntry, Payment
from enrollment import demo
from enrollment.models import NikPrefix, Participant
from enrollment.nik import parse_nik
from enrollment.services import normalize_phone
from reporting.models import ProvinceRollup, RollupDay, Target, TargetVersion

NOW = "2026-09-20T04:00:00Z"  # 11:00 WIB on 20 September 2026
WORKERS = 500


def _seed(workers: int = WORKERS) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--workers", str(workers), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.clock(NOW)
def test_demo_has_history_true_to_the_rules(refdata: Any, settings: Any) -> None:
    settings.DEBUG = True  # the demo is for `make run` only (tests run with DEBUG off)
    output = _seed()
    today = timezone.localdate()
    steps = [s.name for s in demo.demo_steps()]
    assert steps[:3] == ["logins", "workers", "payments"]
    assert steps[-2:] == ["rollups", "targets"]
    for name in steps:
        assert f"demo: {name}:" in output
    assert Participant.objects.count() == WORKERS

    # registrations spread over the 18 months before today, none in the future
    first_day = demo.DemoContext(today=today, workers=WORKERS).first_day
    span = Participant.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert timezone.localdate(span["first"]) >= first_day
    assert span["last"] <= timezone.now()
    months = {rules.month_start(timezone.localdate(c)) for c in _created()}
    assert len(months) >= 17  # 19 calendar months touched; a quiet early month may be empty

    # the national shape: West Java, East Java and Central Java lead
    provinces = Counter(Participant.objects.values_list("province_id", flat=True))
    assert {p for p, _n in provinces.most_common(3)} == {"32", "33", "35"}
    assert len(provinces) >= 25

    # every status, lapses and reactivations, consistent with the ledger
    statuses = Counter(Coverage.objects.values_list("status", flat=True))
    assert set(statuses) == {"active", "grace", "lapsed"}
    assert statuses["active"] > statuses["lapsed"]
    assert Coverage.objects.filter(status="lapsed", lapsed_since__isnull=True).count() == 0
    assert Coverage.objects.filter(reactivations__gt=0).exists()
    react = Payment.objects.filter(reactivation=True).select_related("participant").first()
    assert react is not None
    # a reactivation covers from the month it is paid in: no back-cover of the lapsed months
    assert react.period_start == rules.month_start(timezone.localdate(react.paid_at))
    assert Payment.objects.count() == LedgerEntry.objects.count()
    # someone of each payer group: self-paid, a company (Sertakan), a regency's APBD
    assert {"self", "sponsor", "apbd"} <= set(Payment.objects.values_list("payer_type", flat=True))
    call_command("check_ledger", stdout=io.StringIO())  # coverage agrees with the ledger

    # the named agents: portfolios of their own, in several villages, some in arrears
    for username in ("agent1", "agent2", "agent3"):
        mine = Participant.objects.filter(registered_by__user__username=username)
        assert mine.count() >= 5, username
        assert mine.values("village_id").distinct().count() >= 3, username
        assert mine.filter(coverage__status__in=["grace", "lapsed"]).exists(), username
    assert FollowUpOutcome.objects.filter(recorded_by__username="agent1").exists()
    assert CommissionStatement.objects.filter(status="paid").exists()
    assert CommissionStatement.objects.filter(month=rules.month_start(today)).exists()

    # the dashboard: built up to today, a monthly series that moves, a target of the demo's size
    assert RollupDay.objects.filter(day=today).exists()
    active = Coverage.objects.filter(status="active").count()
    assert ProvinceRollup.objects.filter(day=today).aggregate(a=Sum("active"))["a"] == active
    month_ends = [
        RollupDay.objects.filter(day__year=today.year, day__month=m).aggregate(d=Max("day"))["d"]
        for m in range(1, today.month + 1)
    ]
    series = [
        ProvinceRollup.objects.filter(day=d).aggregate(a=Sum("active"))["a"] for d in month_ends
    ]
    assert series == sorted(series) or len(set(series)) > 3  # growing, not a flat line
    assert series[0] < series[-1]
    target = Target.objects.get(year=today.year)
    assert active < target.active_target <= 2 * active
    assert TargetVersion.objects.filter(year=today.year).latest("version").source == "demo"

    # safe to run twice: nothing added
    counts = [m.objects.count() for m in (Participant, Payment, LedgerEntry, FollowUpOutcome)]
    output = _seed()
    assert [m.objects.count() for m in (Participant, Payment, LedgerEntry, FollowUpOutcome)] == (
        counts
    )
    assert "'workers_created': 0" in output and "'payments': 0" in output
    assert "'rollup_days': 0" in output  # today is built already: not rebuilt


def _created() -> list[Any]:
    return list(Participant.objects.values_list("created_at", flat=True))


@pytest.mark.django_db
@pytest.mark.clock(NOW)
def test_demo_workers_pass_the_registration_rules_and_are_deterministic(refdata: Any) -> None:
    ctx = demo.DemoContext(today=timezone.localdate(), workers=300)
    demo.seed_demo()
    geo = demo._Geography.load()
    geo.concentrate(random.Random(1))
    agents = demo.demo_agents(geo, random.Random(2))
    rows = demo.worker_rows(ctx, geo, agents)
    assert rows == demo.worker_rows(ctx, geo, agents)  # the same seed, the same workers
    prefixes = set(NikPrefix.objects.values_list("code", flat=True))
    niks = set()
    for row in rows:
        nik = parse_nik(row["nik"], today=ctx.today)
        assert nik.birth_date == row["birth_date"] and nik.sex == row["sex"]
        assert nik.prefix6 in prefixes
        assert row["nik"][:6] == row["village_id"][:8].replace(".", "")  # the village's district
        assert normalize_phone(row["phone"]) == row["phone"]
        niks.add(row["nik"])
    assert len(niks) == len(rows)
    other = demo.worker_rows(
        demo.DemoContext(today=ctx.today, workers=300, seed=ctx.seed + 1), geo, agents
    )
    assert [r["nik"] for r in other] != [r["nik"] for r in rows]


@pytest.mark.django_db
def test_payer_profiles_in_python_and_sql_agree() -> None:
    grid = [
        (profile, k, payer_shape.months_per_payment(profile, h), h, kmax)
        for profile in payer_shape.PROFILE_NAMES
        for h in range(payer_shape.H_VALUES)
        for kmax in (0, 3, 11, 17)
        for k in range(kmax + 1)
    ]
    sql = payer_shape.COND.format(k="b.k")  # %% stays: the query has parameters
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql} FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::int[]) "  # noqa: S608
            "AS b(profile, k, l, h, kmax) ",
            [list(col) for col in zip(*grid, strict=True)],
        )
        in_sql = [bool(v) for (v,) in cursor.fetchall()]
    in_python = [payer_shape.pays(p, k, l=ln, h=h, kmax=km) for p, k, ln, h, km in grid]
    assert in_sql == in_python
    assert any(in_python) and not all(in_python)


def test_demo_context_first_day() -> None:
    assert demo.DemoContext(today=date(2026, 9, 20), workers=1).first_day == date(2025, 3, 20)
    assert demo.DemoContext(today=date(2026, 3, 31), workers=1).first_day == date(2024, 9, 28)
