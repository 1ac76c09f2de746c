"""The rollups equal the same figures computed directly from participants and the ledger, on
generated data with payments, reversals, lapses and payments at 23:30 on a month's last day."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from contributions import coverage as rules
from contributions.models import Coverage, LedgerEntry
from contributions.rates import quote_contribution
from contributions.services import refresh_coverage_statuses, reverse_payment
from enrollment.models import Participant
from reporting.models import DailyRollup, RollupDay
from reporting.rollups import rebuild_rollups
from tests.conftest import nik_for

# The generated year needs most of a year behind "today" (lapses, reactivations, reversals):
# its last day, at the two clocks (23:30 UTC on the 30th = 06:30 WIB, and 00:30 WIB).
pytestmark = pytest.mark.two_clocks(day="2026-12-31")

VILLAGES = ["32.73.05.1001", "35.78.01.1001"]
OCCUPATIONS = ["petani", "tukang", "ojol"]


@pytest.fixture
def generated(participant_on: Any, pay_on: Any) -> list[Any]:
    """~30 workers registered over the year, paying at random (chronologically), two reversed."""
    from contributions.errors import PaymentError

    rng = random.Random(5)
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    people = []
    for i in range(30):
        born = date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28))
        sex = rng.choice("MF")
        village = rng.choice(VILLAGES)
        prefix = village.replace(".", "")[:6]
        reg = first + timedelta(days=rng.randrange(max(1, (today - first).days - 20)))
        people.append(
            participant_on(
                reg,
                nik=nik_for(born, sex, 900 + i, prefix=prefix),
                birth_date=born,
                sex=sex,
                village=village,
                occupation=rng.choice(OCCUPATIONS),
                jht=rng.random() < 0.3,
                channel=rng.choice(["agent", "branch", "self"]),
            )
        )
    events = []
    for p in people:
        day = timezone.localdate(p.created_at)
        while True:
            day += timedelta(days=rng.randrange(5, 80))
            if day >= today:
                break
            events.append((day, p.pk, rng.choice([1, 1, 2, 3])))
    # payments late on the last day of a month: the local day, not UTC, decides
    events.append((date(today.year, 1, 31), people[0].pk, 1))
    by_pk = {p.pk: p for p in people}
    for day, pk, months in sorted(events):
        p = by_pk[pk]
        if day < timezone.localdate(p.created_at):
            continue
        try:
            pay_on(p, day, months=months, hour=23, minute=30)
        except PaymentError:
            continue
    for p in people[:3]:
        latest = p.payments.order_by("-paid_at").first()
        if latest is not None:
            reverse_payment(payment=latest, reason="bank recall", user=None)
    refresh_coverage_statuses(as_of=today)
    return people


def _paid_through(entries: list[Any], day: date) -> date | None:
    end_of_day = timezone.make_aware(
        timezone.datetime.combine(day + timedelta(days=1), timezone.datetime.min.time())
    )
    best = None
    for e in entries:
        if e.payment.paid_at >= end_of_day:
            continue
        rev = getattr(e, "_reversal", None)
        if rev is not None and rev.created_at < end_of_day:
            continue
        last = rules.month_start(e.period_start)
        for _ in range(e.months - 1):
            last = (last + timedelta(days=32)).replace(day=1)
        best = last if best is None or last > best else best
    return best


def direct(day: date) -> dict[str, Any]:
    """Figures for `day` straight from participants, coverage and ledger, in Python."""
    out: Counter[str] = Counter()
    by_province: Counter[tuple[str, str]] = Counter()
    # (the payments by a second query: a join on payment_id alone is refused on a cluster)
    entries = list(LedgerEntry.objects.filter(kind="payment").prefetch_related("payment"))
    for r in LedgerEntry.objects.filter(kind="reversal"):
        for e in entries:
            if e.pk == r.reverses_id:
                e._reversal = r  # type: ignore[attr-defined]
    starts = dict(Coverage.objects.values_list("participant_id", "start_month"))
    first_day = date(day.year, 1, 1)

    def status(p: Participant, d: date) -> str | None:
        if timezone.localdate(p.created_at) > d:
            return None
        mine = [e for e in entries if e.participant_id == p.pk]
        return rules.status_for(
            paid_through=_paid_through(mine, d), start_month=starts[p.pk], as_of=d
        )

    for p in Participant.objects.select_related("occupation"):
        s = status(p, day)
        if s is None:
            continue
        out["registered"] += 1
        out[s] += 1
        by_province[(p.province_id, s)] += 1
        if timezone.localdate(p.created_at) >= first_day:
            out["new_registrations"] += 1
        d, prev = first_day, status(p, first_day - timedelta(days=1))
        while d <= day:
            now = status(p, d)
            if now == "lapsed" and prev != "lapsed":
                out["lapses"] += 1
            if prev == "lapsed" and now != "lapsed":
                out["reactivations"] += 1
            prev, d = now, d + timedelta(days=1)
    for e in entries:
        signs = [(timezone.localdate(e.payment.paid_at), 1)]
        rev = getattr(e, "_reversal", None)
        if rev is not None:
            signs.append((timezone.localdate(rev.created_at), -1))
        p = e.participant
        quote = quote_contribution(
            declared_income=p.declared_income,
            programmes=p.programmes,
            months=e.months,
            first_month=e.period_start,
            sector=p.occupation.sector,
        )
        for on, sign in signs:
            if first_day <= on <= day:
                out["collected_total"] += sign * e.amount
                for prog, amount in quote.per_programme.items():
                    out[f"collected_{prog.lower()}"] += sign * amount
    return {"totals": out, "by_province": by_province}


def from_rollups(day: date) -> dict[str, Any]:
    rows = DailyRollup.objects.filter(day=day)
    out: Counter[str] = Counter()
    by_province: Counter[tuple[str, str]] = Counter()
    for r in rows:
        for k in ("registered", "active", "grace", "lapsed"):
            out[k] += getattr(r, k)
        for k in (
            "new_registrations",
            "lapses",
            "reactivations",
            "collected_total",
            "collected_jkk",
            "collected_jkm",
            "collected_jht",
        ):
            out[k] += getattr(r, f"ytd_{k}")
        for k in ("active", "grace", "lapsed"):
            by_province[(r.province_id, k)] += getattr(r, k)
    return {"totals": +out, "by_province": +by_province}


def test_rollups_equal_direct_figures_at_month_boundaries(generated: Any) -> None:
    today = timezone.localdate()
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    days = {today}
    for month in range(1, today.month + 1):
        first = date(today.year, month, 1)
        days |= {first, first + timedelta(days=14), first + timedelta(days=15)}
        if month > 1:
            days.add(first - timedelta(days=1))
    for day in sorted(d for d in days if d <= today):
        want = direct(day)
        assert from_rollups(day)["totals"] == +want["totals"], day
        assert from_rollups(day)["by_province"] == +want["by_province"], day
    # the generated data has every case the rule needs
    year = direct(today)["totals"]
    assert year["lapses"] > 0 and year["reactivations"] > 0 and year["active"] > 0
    assert LedgerEntry.objects.filter(kind="reversal").count() >= 2
    # and today's statuses equal the live Coverage table
    live = Counter(Coverage.objects.values_list("status", flat=True))
    got = from_rollups(today)["totals"]
    assert {k: got[k] for k in live} == dict(live)
    assert not DailyRollup.objects.filter(day=today).exclude(collected_other=0).exists()


def test_rebuild_is_idempotent_and_the_command_rebuilds_a_range(generated: Any) -> None:
    today = timezone.localdate()
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    before = sorted(
        DailyRollup.objects.filter(day=today).values_list(
            "province_id", "occupation_id", "active", "ytd_collected_total"
        )
    )
    call_command(
        "rebuild_rollups", "--from", str(today - timedelta(days=3)), "--to", str(today), verbosity=0
    )
    after = sorted(
        DailyRollup.objects.filter(day=today).values_list(
            "province_id", "occupation_id", "active", "ytd_collected_total"
        )
    )
    assert before == after
    assert RollupDay.objects.filter(day=today).exists()


def test_rebuild_without_the_day_before_starts_on_1_january(generated: Any) -> None:
    today = timezone.localdate()
    result = rebuild_rollups(start=today, end=today)
    assert result.days == (today - date(today.year, 1, 1)).days + 1


def test_refresh_today_picks_up_a_new_payment(
    generated: Any, participant_on: Any, pay_on: Any
) -> None:
    from reporting.rollups import refresh_today

    today = timezone.localdate()
    # a worker who never paid and has just lapsed (the generated year may have none, e.g. in
    # its first months): registered in the last month that is lapsed today
    lapsed = participant_on(rules.lapse_threshold(today))
    refresh_coverage_statuses(as_of=today)
    assert Coverage.objects.get(pk=lapsed.pk).status == "lapsed"
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    before = from_rollups(today)["totals"]
    pay_on(lapsed, today)
    refresh_today()
    after = from_rollups(today)["totals"]
    assert after["active"] == before["active"] + 1
    assert after["reactivations"] == before["reactivations"] + 1
    assert after == +direct(today)["totals"]


@pytest.mark.django_db(transaction=True)
def test_the_command_vacuums_the_rollup_tables(generated: Any) -> None:
    """Outside a transaction the command vacuums and analyses the four rollup tables after the
    rebuild (whose deleted rows are as many as the live ones)."""
    from io import StringIO

    from django.db import connection

    from reporting.management.commands.rebuild_rollups import ROLLUP_TABLES

    today = timezone.localdate()
    out = StringIO()
    call_command("rebuild_rollups", "--from", str(date(today.year, 1, 1)), stdout=out)
    assert "rollup tables: vacuumed and analysed" in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s)"
            " AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL",
            [list(ROLLUP_TABLES)],
        )
        assert sorted(r[0] for r in cursor.fetchall()) == sorted(ROLLUP_TABLES)


def _stored(model: Any) -> list[tuple[Any, ...]]:
    fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    return sorted(model.objects.values_list(*fields), key=repr)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_transaction", [False, True], ids=["sessions", "one-transaction"])
def test_a_build_keeping_some_days_stores_them_as_a_full_build_does(
    generated: Any, in_transaction: bool
) -> None:
    """The demo's quick build (reporting/demo.py: month ends and recent days): every kept day's
    rows equal those of a full build, other days are not stored nor marked built - through the
    staged build in several sessions and through the direct build inside a transaction."""
    from django.db import transaction

    from reporting.demo import demo_rollup_days
    from reporting.models import AgentRollup, DemographicRollup, ProvinceRollup

    models = (DailyRollup, ProvinceRollup, DemographicRollup, AgentRollup)
    today = timezone.localdate()
    start = date(today.year, 1, 1)
    rebuild_rollups(start=start, end=today)
    full = {model: _stored(model) for model in models}
    keep = demo_rollup_days(start, today)
    assert 12 <= len(keep) < (today - start).days + 1  # the month ends and the recent days
    if in_transaction:
        with transaction.atomic():
            rebuild_rollups(start=start, end=today, keep_days=keep)
    else:
        rebuild_rollups(start=start, end=today, keep_days=keep)
    for model in models:
        want = [row for row in full[model] if row[0] in keep]  # day is the first field
        assert want or model is AgentRollup, model  # the generated workers have no agent
        assert _stored(model) == want, model
    assert sorted(RollupDay.objects.values_list("day", flat=True)) == keep
