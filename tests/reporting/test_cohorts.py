"""Cohort retention and lapse/reactivation flows (reporting.rollups.cohorts, reporting.cohorts):
the rollup's figures equal a direct computation from the participants and the ledger, on
generated histories (registrations over 30 months, payments of 1-3 months, gaps long enough to
lapse, reactivations, reversals, two provinces, several occupations, channels, payer types and
agents), for every cut the page offers; the month-end rule's SQL form equals its Python form;
the dashboard shows the section and exports it."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from contributions import coverage as rules
from contributions import rules_sql
from contributions.rates import add_months
from tests.conftest import login_as, make_staff, nik_for

NOW = "2026-11-20T05:00:00Z"  # 12:00 WIB, 20 November 2026: the last complete month is October
TODAY = date(2026, 11, 20)
SEED = 20261120


def _local(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, dtime(hour, 0)))


def _month_end(month: date) -> date:
    return add_months(month, 1) - timedelta(days=1)


def _generate(register: Any, branches: dict[str, Any], n: int = 48) -> None:
    """Participants registered between June 2024 and November 2026, each paying month by month
    with random gaps (some long enough to lapse, then a reactivation), some payments reversed a
    few days later; every write through the services, at its own instant (time travel), so
    created_at, paid_at and the reversals' created_at are the real ones."""
    from contributions.models import Coverage, LedgerEntry
    from contributions.quotes import quote_payment
    from contributions.services import record_payment, reverse_payment
    from enrollment.models import Occupation, Region

    rng = random.Random(SEED)
    villages = [
        "32.73.05.1001",
        Region.objects.filter(level=4, code__startswith="35.")
        .order_by("code")
        .values_list("code", flat=True)
        .first(),
    ]
    occupations = list(
        Occupation.objects.filter(code__in=["petani", "pedagang", "nelayan", "ojol"]).values_list(
            "code", flat=True
        )
    )
    assert len(occupations) >= 3 and villages[1]
    agents = [
        make_staff(f"cohort-agent-{i}", "agent", branches["BDG" if i else "SBY"]).staff
        for i in range(3)
    ]
    first, last = date(2024, 6, 1), date(2026, 11, 15)
    refs = iter(range(1, 10**6))
    for i in range(n):
        reg_day = first + timedelta(days=rng.randrange((last - first).days))
        channel = rng.choice(["agent", "agent", "branch", "self"])
        with time_machine.travel(_local(reg_day, 9), tick=False):
            p = register(
                nik=nik_for(serial=3000 + i),
                village=rng.choice(villages),
                occupation=rng.choice(occupations),
                channel=channel,
                registered_by=rng.choice(agents) if channel == "agent" else None,
            )
        payer_type = rng.choice(["self", "self", "apbd"])
        day = reg_day + timedelta(days=rng.randrange(0, 20))
        habit = rng.random()  # how regularly this participant pays
        while day < TODAY - timedelta(days=1):
            if rng.random() < 0.15 + 0.5 * (1 - habit):
                day += timedelta(days=rng.choice([35, 70, 140, 200]))  # a gap: grace or lapse
                continue
            months = rng.choice([1, 1, 1, 2, 3])
            with time_machine.travel(_local(day, 10), tick=False):
                cov = Coverage.objects.get(pk=p.pk)
                due = quote_payment(p, cov, months=months, as_of=day, payer_type=payer_type)
                payment, _created = record_payment(
                    participant=p,
                    amount=due.amount,
                    months=months,
                    payer="participant",
                    channel="bank",
                    reference=f"C-{p.pk}-{next(refs)}",
                    paid_at=timezone.now(),
                    payer_type=payer_type,
                    notify=False,
                )
            if rng.random() < 0.08:  # reversed a few days later (the latest payment)
                later = min(day + timedelta(days=rng.randrange(1, 40)), TODAY - timedelta(days=1))
                with time_machine.travel(_local(later, 11), tick=False):
                    reverse_payment(payment=payment, reason="wrong participant", user=None)
                day = later
            day += timedelta(days=rng.randrange(20, 45) * months)
    assert LedgerEntry.objects.filter(kind="reversal").exists()


def _direct(today: date) -> tuple[dict[tuple[str, str, str], dict[Any, Any]], dict[Any, Any]]:
    """The cohort figures and flows straight from participants and the ledger, month end by
    month end with the Python rule (coverage.status_at_month_end), for every cut. Returns
    {cut: {(cohort, k): (participants, active)}} and {cut: {month: (lapses, reactivations)}}."""
    from contributions.models import Coverage, LedgerEntry
    from enrollment.models import Participant

    wn = add_months(today.replace(day=1), -1)
    w0 = add_months(wn, -23)
    tz = timezone.get_current_timezone()
    reversal_day = {
        e.reverses_id: e.created_at.astimezone(tz).date()
        for e in LedgerEntry.objects.filter(kind="reversal")
    }
    entries: dict[int, list[Any]] = defaultdict(list)
    # (the payments by a second query: a join on payment_id alone is refused on a cluster)
    for e in LedgerEntry.objects.filter(kind="payment").prefetch_related("payment"):
        entries[e.participant_id].append(e)
    starts = dict(Coverage.objects.values_list("participant_id", "start_month"))
    cohorts: dict[Any, dict[Any, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    flows: dict[Any, dict[Any, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for p in Participant.objects.all():
        sm = starts[p.pk]
        if sm > wn:
            continue
        mine = sorted(entries[p.pk], key=lambda e: (e.payment.paid_at, e.pk))
        # the payer of the first payment made by the end of the last complete month
        paid = [e for e in mine if e.payment.paid_at.astimezone(tz).date() <= _month_end(wn)]
        payer = paid[0].payment.payer_type if paid else "self"
        keys = [("", ""), ("occupation", p.occupation_id), ("channel", p.channel),
                ("payer", payer)]  # fmt: skip
        if p.registered_by_id:
            keys.append(("agent", str(p.registered_by_id)))
        cuts = [(prov, d, k) for prov in ("", p.province_id) for d, k in keys]
        cuts = [c for c in cuts if not (c[0] and c[1] == "agent")]  # agents: national only

        def status(month: date, mine: list[Any] = mine, sm: date = sm) -> str | None:
            if month < sm:
                return None
            end = _month_end(month)
            live = [
                add_months(e.period_start, e.months - 1)
                for e in mine
                if e.payment.paid_at.astimezone(tz).date() <= end
                and not (e.pk in reversal_day and reversal_day[e.pk] <= end)
            ]
            return rules.status_at_month_end(
                paid_through=max(live) if live else None, start_month=sm, month=month
            )

        if sm >= w0:
            for k in range(1, 25):
                month = add_months(sm, k - 1)
                if month > wn:
                    break
                active = status(month) == rules.ACTIVE
                for cut in cuts:
                    cohorts[cut][(sm, k)][0] += 1
                    cohorts[cut][(sm, k)][1] += int(active)
        month = w0
        while month <= wn:
            now, before = status(month), status(add_months(month, -1))
            lapse = now == rules.LAPSED and before != rules.LAPSED
            react = before == rules.LAPSED and now != rules.LAPSED
            for cut in cuts:
                flows[cut][month][0] += int(lapse)
                flows[cut][month][1] += int(react)
            month = add_months(month, 1)
    out_c = {cut: {k: tuple(v) for k, v in rows.items()} for cut, rows in cohorts.items()}
    out_f = {
        cut: {m: tuple(v) for m, v in rows.items() if v != [0, 0]} for cut, rows in flows.items()
    }
    return out_c, {cut: rows for cut, rows in out_f.items() if rows}


def _from_rollups() -> tuple[dict[Any, dict[Any, Any]], dict[Any, dict[Any, Any]]]:
    from reporting.models import CohortRollup, RetentionFlowRollup

    cohorts: dict[Any, dict[Any, Any]] = defaultdict(dict)
    for r in CohortRollup.objects.all():
        cohorts[(r.province_id, r.dimension, r.key)][(r.cohort, r.month)] = (
            r.participants,
            r.active,
        )
    flows: dict[Any, dict[Any, Any]] = defaultdict(dict)
    for r in RetentionFlowRollup.objects.all():
        if r.lapses or r.reactivations:
            flows[(r.province_id, r.dimension, r.key)][r.month] = (r.lapses, r.reactivations)
    return dict(cohorts), dict(flows)


@pytest.mark.clock(NOW)
def test_cohorts_and_flows_equal_a_direct_computation_for_every_cut(
    register: Any, branches: dict[str, Any]
) -> None:
    from reporting.rollups import rebuild_cohorts

    _generate(register, branches)
    result = rebuild_cohorts(force=True)
    assert result.built and result.last_month == date(2026, 10, 1)
    got_c, got_f = _from_rollups()
    want_c, want_f = _direct(TODAY)
    # every kind of cut is there (none, province, occupation, channel, payer, agent, and a
    # province with each of them), and the data has what the test is about
    dims = {cut[1] for cut in want_c}
    assert dims == {"", "occupation", "channel", "payer", "agent"}
    assert {cut[0] for cut in want_c} >= {"", "32", "35"}
    assert any(v[0] > v[1] > 0 for v in want_c[("", "", "")].values())
    assert sum(v[0] for v in want_f[("", "", "")].values()) > 3  # lapses
    assert sum(v[1] for v in want_f[("", "", "")].values()) > 1  # reactivations
    assert set(got_c) == set(want_c)
    for cut, rows in want_c.items():
        assert got_c[cut] == rows, cut
    assert got_f == want_f


@pytest.mark.clock(NOW)
def test_a_second_build_with_nothing_new_is_skipped_and_a_late_payment_is_not(
    register: Any, pay_on: Any
) -> None:
    from reporting.models import CohortRollup
    from reporting.rollups import rebuild_cohorts

    p = register(nik=nik_for(serial=4001))  # registered today: no complete month yet
    assert rebuild_cohorts(force=True).cohort_rows == 0
    assert not rebuild_cohorts().built
    today_too = register(nik=nik_for(serial=4003))  # this month: in no complete month yet
    pay_on(today_too, TODAY, months=1)
    assert not rebuild_cohorts().built
    with time_machine.travel(_local(date(2026, 9, 3), 9), tick=False):
        q = register(nik=nik_for(serial=4002))
    pay_on(q, date(2026, 9, 5), months=2)
    assert rebuild_cohorts().built
    rows = list(
        CohortRollup.objects.filter(province_id="", dimension="", key="")
        .order_by("month")
        .values_list("cohort", "month", "participants", "active")
    )
    assert rows == [(date(2026, 9, 1), 1, 1, 1), (date(2026, 9, 1), 2, 1, 1)]
    assert p.pk


@pytest.mark.clock(NOW)
def test_rebuild_rollups_builds_the_cohorts(register: Any, pay_on: Any) -> None:
    from reporting.models import CohortBuild, CohortRollup
    from reporting.rollups import rebuild_rollups

    with time_machine.travel(_local(date(2026, 10, 2), 9), tick=False):
        p = register(nik=nik_for(serial=4101))
    pay_on(p, date(2026, 10, 3), months=1)
    rebuild_rollups(start=TODAY, end=TODAY)
    assert CohortBuild.objects.get().last_month == date(2026, 10, 1)
    assert CohortRollup.objects.filter(dimension="", province_id="", active=1).count() == 1


@pytest.mark.clock(NOW)
def test_month_end_status_sql_equals_python(db: Any) -> None:
    """rules_sql.status_at_month_end over coverage.month_end_calendar == the Python rule, for
    every next unpaid month around the range and every month end of it."""
    first, last = date(2025, 1, 1), date(2026, 10, 1)
    calendar = dict(rules.month_end_calendar(first, last))
    thr_hi = rules.lapse_threshold(_month_end(last))
    cases = []
    month = first
    while month <= last:
        n = add_months(first, -8)
        while n <= add_months(last, 3):
            lapsed_from = calendar.get(n)
            if lapsed_from is None:
                lapsed_from = date.max if n > thr_hi else date.min
            cases.append((month, n, lapsed_from))
            n = add_months(n, 1)
        month = add_months(month, 1)
    sql = rules_sql.status_at_month_end("c.m", "c.n", "c.l")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql} FROM unnest(%s::date[], %s::date[], %s::date[]) c(m, n, l)",  # noqa: S608
            [[c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases]],
        )
        got = [r[0] for r in cursor.fetchall()]
    codes = {rules.ACTIVE: rules_sql.ACTIVE_CODE, rules.GRACE: rules_sql.GRACE_CODE,
             rules.LAPSED: rules_sql.LAPSED_CODE}  # fmt: skip
    want = [
        codes[
            rules.status_at_month_end(
                paid_through=add_months(n, -1), start_month=add_months(n, -1), month=m
            )
        ]
        for m, n, _l in cases
    ]
    assert got == want
    assert {rules_sql.ACTIVE_CODE, rules_sql.GRACE_CODE, rules_sql.LAPSED_CODE} <= set(got)


@pytest.mark.clock(NOW)
def test_dashboard_shows_cohorts_filters_them_and_exports_them(
    register: Any, pay_on: Any, admin_user: Any
) -> None:
    from reporting.rollups import rebuild_cohorts

    with time_machine.travel(_local(date(2026, 8, 4), 9), tick=False):
        a = register(nik=nik_for(serial=4201), channel="self")
        b = register(nik=nik_for(serial=4202), channel="branch")
    pay_on(a, date(2026, 8, 6), months=3)
    pay_on(b, date(2026, 8, 6), months=1)
    rebuild_cohorts(force=True)
    client = login_as(Client(), admin_user)
    page = client.get("/reports/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="table-cohorts"' in body and 'data-key="2026-08"' in body
    assert 'id="cohort-data"' in body
    rates = page.context["cohort_figures"]["cohorts"][0]["rates"]
    assert rates == [1.0, 0.5, 0.5]
    cut = client.get("/reports/", {"channel": "self"})
    assert cut.context["cohort_figures"]["cohorts"][0]["rates"] == [1.0, 1.0, 1.0]
    both = client.get("/reports/", {"channel": "self", "payer": "apbd"})
    assert both.status_code == 200
    assert both.context["cohort_errors"] and both.context["cohort_filters"].dimension == "channel"
    bad = client.get("/reports/", {"agent": "NOBODY"})
    assert bad.status_code == 200 and bad.context["cohort_errors"]
    export = client.get("/reports/export/cohorts.csv", {"channel": "branch"})
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[1][:5] == ["2026-08", "1", "100.0", "0.0", "0.0"]
    flows = client.get("/reports/export/retention_flows.xlsx")
    assert flows.status_code == 200 and flows.content[:2] == b"PK"


@pytest.mark.clock(NOW)
def test_regional_admin_sees_their_province_cut_only(
    register: Any, pay_on: Any, regional_admin: Any, branches: dict[str, Any]
) -> None:
    from reporting.rollups import rebuild_cohorts

    with time_machine.travel(_local(date(2026, 8, 4), 9), tick=False):
        west = register(nik=nik_for(serial=4301))
        east = register(
            nik=nik_for(date(1992, 3, 4), "F", 4302, prefix="357801"),
            birth_date=date(1992, 3, 4),
            sex="F",
            village="35.78.01.1001",
        )
    pay_on(east, date(2026, 8, 6), months=3)
    assert west.province_id == "32"
    other = make_staff("cohort-agent-bdg", "agent", branches["BDG"]).staff
    rebuild_cohorts(force=True)
    client = login_as(Client(), regional_admin)
    page = client.get("/reports/", {"province": "32"})
    assert page.status_code == 200
    assert page.context["cohort_filters"].province == "35"
    assert page.context["cohort_figures"]["cohorts"][0]["participants"] == 1
    assert page.context["cohort_figures"]["cohorts"][0]["rates"] == [1.0, 1.0, 1.0]
    named = client.get("/reports/", {"agent": other.agent_code})  # an agent of Jawa Barat
    assert named.context["cohort_errors"] and named.context["cohort_filters"].dimension == ""
    export = client.get("/reports/export/cohorts.csv", {"province": "32"})
    assert export.status_code == 200
    assert list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))[1][1] == "1"
