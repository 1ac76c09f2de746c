"""The event-based build (one pass over the ledger for a range) writes exactly the rows of the
per-day build (a ledger scan per day) for every day of the year, on generated data with agents,
partners, multi-month and late payments, lapses and reactivations at month edges, reversals on
past days, an adjustment and age-band birthdays; and the intraday delta refresh equals a rebuild
of the day."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from contributions.coverage import status_calendar
from contributions.models import Coverage
from contributions.services import refresh_coverage_statuses, reverse_payment
from reporting.models import (
    AgentRollup,
    DailyRollup,
    DemographicRollup,
    ProvinceRollup,
    RollupDay,
)
from reporting.rollups import parallel, rebuild_rollups, refresh_today
from reporting.rollups.definitions import LOCK_KEY, day_bounds, marks
from reporting.rollups.group import province_chunks
from reporting.rollups.per_day import rebuild_rollups_per_day
from tests.conftest import make_staff, nik_for
from tests.reporting.conftest import at

VILLAGES = ["32.73.05.1001", "35.78.01.1001"]
OCCUPATIONS = ["petani", "tukang", "ojol"]


def _rows(day: date | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row (all columns but the id), sorted; of one day or of all days."""
    out = {}
    for model in (DailyRollup, ProvinceRollup, DemographicRollup, AgentRollup):
        names = [f.name for f in model._meta.fields if f.name != "id"]
        qs = model.objects.all() if day is None else model.objects.filter(day=day)
        out[model.__name__] = sorted(
            qs.values_list(*names), key=lambda r: tuple("" if v is None else str(v) for v in r)
        )
    return out


def assert_province_rollup_is_daily_without_regency() -> None:
    """ProvinceRollup = DailyRollup summed over the regencies, day by day, figure by figure."""
    from reporting.rollups.definitions import FIGURES, PROVINCE_DIMS

    want: dict[tuple[Any, ...], list[int]] = {}
    for row in DailyRollup.objects.values("day", *PROVINCE_DIMS, *FIGURES):
        key = (row["day"], *(row[d] for d in PROVINCE_DIMS))
        sums = want.setdefault(key, [0] * len(FIGURES))
        for i, name in enumerate(FIGURES):
            sums[i] += row[name]
    got = {
        (row["day"], *(row[d] for d in PROVINCE_DIMS)): [row[f] for f in FIGURES]
        for row in ProvinceRollup.objects.values("day", *PROVINCE_DIMS, *FIGURES)
    }
    assert want and got == want


def _insert_entry(participant_id: int, kind: str, amount: int, on: date, **kw: Any) -> None:
    """A ledger entry created on a past day (the services stamp `now`; the ledger only refuses
    UPDATE and DELETE, so a back-dated INSERT is how a past reversal or adjustment is made)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months,
               reverses_id, reason, created_at) VALUES (%s, %s, %s, 0, %s, 'test', %s)""",
            [participant_id, kind, amount, kw.get("reverses_id"), at(on, 23, 45)],
        )


@pytest.fixture
def history(participant_on: Any, pay_on: Any, branches: dict[str, Any]) -> dict[str, Any]:
    """~40 workers over the year: some registered by agents, some with a partner, paid 1-3
    months at a time, sometimes late (lapse, then reactivation), at 23:30 on month ends, some
    collected by an agent; reversals on past days and today; an adjustment; birthdays that move
    workers to another age band during the year."""
    from contributions.errors import PaymentError
    from enrollment.models import Partner, StaffProfile

    rng = random.Random(11)
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    agents = [
        StaffProfile.objects.get(user=make_staff(f"ev_agent{i}", "agent", b))
        for i, b in enumerate(branches.values())
    ]
    partner = Partner.objects.create(code="EVP", name="Event partner", kind="sponsor")
    people = []
    for i in range(40):
        # born so that a 25th/35th/45th birthday falls inside this year for some of them
        born = date(today.year - rng.choice([25, 35, 45, 30, 50]), 1 + rng.randrange(12), 1)
        sex = rng.choice("MF")
        village = rng.choice(VILLAGES)
        reg = first + timedelta(days=rng.randrange(max(1, (today - first).days - 10)))
        people.append(
            participant_on(
                reg,
                nik=nik_for(born, sex, 700 + i, prefix=village.replace(".", "")[:6]),
                birth_date=born,
                sex=sex,
                village=village,
                occupation=rng.choice(OCCUPATIONS),
                jht=rng.random() < 0.3,
                channel=rng.choice(["agent", "branch", "self"]),
                registered_by=rng.choice([None, *agents]),
                partner=partner if rng.random() < 0.2 else None,
            )
        )
    # some changed occupation in June: their months before it are priced by the earlier one
    # (the rollups' programme split reads the history: rules_sql.held_sector)
    from enrollment.models import OccupationPeriod

    for p in people[::6]:
        before = "petani" if p.occupation_id == "ojol" else "ojol"
        OccupationPeriod.objects.create(
            participant=p, until_month=date(today.year, 6, 1), occupation_id=before
        )
    events = []
    for p in people:
        day = timezone.localdate(p.created_at)
        while True:
            # late payers stay away long enough to lapse; month ends get extra payments
            day += timedelta(days=rng.choice([3, 20, 30, 31, 45, 140]))
            if day >= today:
                break
            if rng.random() < 0.2:
                day = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            events.append((day, p.pk, rng.choice([1, 1, 2, 3])))
    by_pk = {p.pk: p for p in people}
    payments = []
    for day, pk, months in sorted(events):
        p = by_pk[pk]
        if day < timezone.localdate(p.created_at) or day >= today:
            continue
        try:
            payments.append(
                pay_on(
                    p,
                    day,
                    months=months,
                    hour=rng.choice([10, 23]),
                    minute=30,
                    collected_by=rng.choice([None, *agents]),
                )
            )
        except PaymentError:
            continue
    # reversals on past days (a week after the payment), and one today through the service
    reversed_ids = set()
    for payment in payments[::9]:
        later = timezone.localdate(payment.paid_at) + timedelta(days=7)
        if later < today:
            entry = payment.entries.get(kind="payment")
            _insert_entry(payment.participant_id, "reversal", -payment.amount, later,
                          reverses_id=entry.pk)  # fmt: skip
            reversed_ids.add(payment.pk)
    recent = [p for p in payments if p.pk not in reversed_ids]
    reverse_payment(payment=recent[-1], reason="bank recall", user=None)
    earliest = min(people, key=lambda p: p.created_at)
    _insert_entry(earliest.pk, "adjustment", 5_000, timezone.localdate(earliest.created_at))
    refresh_coverage_statuses(as_of=today)
    return {"people": people, "agents": agents, "payments": payments}


@pytest.mark.django_db  # the due dates read the holiday calendar
def test_calendar_follows_the_coverage_rules() -> None:
    from contributions import coverage as rules

    first, last = date(2026, 1, 1), date(2026, 6, 30)
    for nu, grace_from, lapsed_from in status_calendar(first, last):
        for day in (first + timedelta(days=i) for i in range((last - first).days + 1)):
            want = rules.status_for(
                paid_through=(nu - timedelta(days=1)).replace(day=1), start_month=nu, as_of=day
            )
            got = "active" if day < grace_from else "grace" if day < lapsed_from else "lapsed"
            assert got == want, (nu, day)


@pytest.mark.two_clocks(day="2026-12-31")  # a year of history behind "today" (`history`)
@pytest.mark.parametrize("chunk", [1_500_000, 1], ids=["one-group", "group-per-province"])
def test_event_build_equals_the_per_day_build_on_every_day(
    history: dict[str, Any], chunk: int, settings: Any
) -> None:
    """The event build equals the per-day build, whether it takes the country at once or a
    province at a time (ROLLUP_BUILD_CHUNK = 1: the workers live in two provinces)."""
    settings.ROLLUP_BUILD_CHUNK = chunk
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    _mark, pmark = marks()
    groups = province_chunks(day_bounds(today)[1], pmark, chunk)
    assert len(groups) == (1 if chunk > 1 else 2)
    per_day = rebuild_rollups_per_day(start=first, end=today)
    want = _rows()
    assert want["DailyRollup"] and want["DemographicRollup"] and want["AgentRollup"]
    year = DailyRollup.objects.filter(day=today)
    assert sum(r.ytd_lapses for r in year) > 0 and sum(r.ytd_reactivations for r in year) > 0
    assert sum(r.ytd_collected_other for r in year) == 5_000
    assert len({r[5] for r in want["DemographicRollup"]}) >= 3  # several age bands
    assert_province_rollup_is_daily_without_regency()
    DailyRollup.objects.all().delete()
    ProvinceRollup.objects.all().delete()
    DemographicRollup.objects.all().delete()
    AgentRollup.objects.all().delete()
    RollupDay.objects.all().delete()

    events = rebuild_rollups(start=first, end=today)
    assert (events.days, events.rows) == (per_day.days, per_day.rows)
    got = _rows()
    for table in want:
        assert got[table] == want[table], table
    assert_province_rollup_is_daily_without_regency()

    # a range in the middle of the year chains the year-to-date sums from the day before
    middle = first + timedelta(days=(today - first).days // 2)
    rebuild_rollups(start=middle, end=middle + timedelta(days=3))
    assert _rows() == want


@pytest.mark.two_clocks(day="2026-12-31")  # a year of history behind "today" (`history`)
def test_delta_refresh_equals_a_rebuild_of_today(
    history: dict[str, Any], participant_on: Any, pay_on: Any
) -> None:
    from enrollment.models import Participant

    today = timezone.localdate()
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    # new since the build: a reactivation, a payment collected by an agent, a registration by
    # an agent (and its first payment), a late-recorded payment for yesterday, a reversal
    lapsed = list(Participant.objects.filter(coverage__status="lapsed")[:2])
    assert lapsed
    pay_on(lapsed[0], today, hour=8)
    graced = Participant.objects.filter(coverage__status="grace").first()
    if graced is not None:
        pay_on(graced, today, months=2, hour=9, collected_by=history["agents"][0])
    newcomer = participant_on(
        today, nik=nik_for(date(2001, 2, 3), "F", 990), sex="F", birth_date=date(2001, 2, 3),
        registered_by=history["agents"][1],
    )  # fmt: skip
    pay_on(newcomer, today, hour=9)
    if len(lapsed) > 1:
        pay_on(lapsed[1], today - timedelta(days=1), hour=22)
    reverse_payment(payment=history["payments"][-2], reason="double", user=None)

    result = refresh_today()
    # the delta: a handful of touched participants, not a rebuild of the day's rows
    assert result.days == 1 and 3 <= result.rows <= 5
    delta = _rows(today)
    assert_province_rollup_is_daily_without_regency()
    rebuild_rollups(start=today, end=today)
    assert delta == _rows(today)

    # nothing new: the refresh is a no-op
    assert refresh_today().rows == 0
    assert _rows(today) == delta


def _stage_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE 'rb\\_stage\\_%%'")
        return sorted(r[0] for r in cursor.fetchall())


def _lock_is_free() -> bool:
    """The build lock can be taken by another session (a refresh could run now)."""
    from django.db import connections

    other = connections.create_connection(connection.alias)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            row = cursor.fetchone()
            return bool(row and row[0])
    finally:
        other.close()


@pytest.mark.two_clocks(day="2026-12-31")  # a year of history behind "today" (`history`)
@pytest.mark.django_db(transaction=True)
def test_parallel_build_equals_the_per_day_build(
    history: dict[str, Any], settings: Any, monkeypatch: Any
) -> None:
    """Outside a transaction, two sessions build a group of provinces each on one snapshot,
    through the staging tables: the rows are those of the per-day build. A worker that fails
    leaves the rows as they were, no staging table and the lock free."""
    settings.ROLLUP_BUILD_CHUNK = 1
    settings.ROLLUP_BUILD_WORKERS = 2
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    per_day = rebuild_rollups_per_day(start=first, end=today)
    want = _rows()
    assert want["DailyRollup"] and want["DemographicRollup"] and want["AgentRollup"]

    sessions: set[int] = set()
    real_chunk = parallel.build_group

    def chunk_in_a_session(cursor: Any, params: dict[str, Any], *args: Any) -> int:
        cursor.execute("SELECT pg_backend_pid()")
        sessions.add(cursor.cursor.fetchone()[0])
        return real_chunk(cursor, params, *args)

    monkeypatch.setattr(parallel, "build_group", chunk_in_a_session)
    events = rebuild_rollups(start=first, end=today)
    assert (events.days, events.rows) == (per_day.days, per_day.rows)
    assert _rows() == want
    assert_province_rollup_is_daily_without_regency()
    assert len(sessions) == 2 and connection.connection.info.backend_pid not in sessions
    assert _stage_tables() == [] and _lock_is_free()

    def failing_chunk(cursor: Any, params: dict[str, Any], *args: Any) -> int:
        if params["plo"]:  # the second group of provinces
            cursor.execute("SELECT 1/0")
        return real_chunk(cursor, params, *args)

    monkeypatch.setattr(parallel, "build_group", failing_chunk)
    with pytest.raises(Exception, match="division by zero"):
        rebuild_rollups(start=first, end=today)
    assert _rows() == want
    assert _stage_tables() == [] and _lock_is_free()


@pytest.mark.two_clocks(day="2026-12-31")  # the edge days lie between February and May
def test_event_build_on_age_band_birthdays_that_are_also_status_days(
    participant_on: Any, pay_on: Any
) -> None:
    """Deterministic edge days of the change rows (rb_chg), each equal to the per-day build:
    a payment on the day a participant enters the next age band, a lapse on that day, the first
    day of grace on it, a reversal on it, and a registration on it."""
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    start = first + timedelta(days=4)
    calendar = {
        nu: (grace, lapse) for nu, grace, lapse in status_calendar(first - timedelta(days=1), today)
    }
    feb = date(today.year, 2, 1)
    grace_day, lapse_day = calendar[feb]  # of someone who paid January only
    paid_day = date(today.year, 3, 10)
    reversal_day = date(today.year, 5, 20)
    registration_day = date(today.year, 4, 15)
    assert start < grace_day < lapse_day < today and max(paid_day, reversal_day) < today

    def born(birthday: date, age: int) -> date:
        return birthday.replace(year=birthday.year - age)

    def person(birthday: date, age: int, serial: int, registered: date = start) -> Any:
        birth = born(birthday, age)
        return participant_on(registered, nik=nik_for(birth, "F", serial), birth_date=birth,
                              sex="F")  # fmt: skip

    pays_on_birthday = person(paid_day, 25, 801)
    lapses_on_birthday = person(lapse_day, 35, 802)
    grace_on_birthday = person(grace_day, 25, 803)
    reversed_on_birthday = person(reversal_day, 45, 804)
    person(registration_day, 55, 805, registered=registration_day)
    for p in (pays_on_birthday, lapses_on_birthday, grace_on_birthday, reversed_on_birthday):
        pay_on(p, start)
    pay_on(pays_on_birthday, paid_day, months=2)
    second = pay_on(reversed_on_birthday, feb + timedelta(days=2))
    entry = second.entries.get(kind="payment")
    _insert_entry(reversed_on_birthday.pk, "reversal", -second.amount, reversal_day,
                  reverses_id=entry.pk)  # fmt: skip
    refresh_coverage_statuses(as_of=today)

    rebuild_rollups_per_day(start=first, end=today)
    want = _rows()
    bands = {r[5] for r in want["DemographicRollup"]}
    assert {"15-24", "25-34", "35-44", "45-54", "55+"} <= bands
    for model in (DailyRollup, ProvinceRollup, DemographicRollup, AgentRollup, RollupDay):
        model.objects.all().delete()
    rebuild_rollups(start=first, end=today)
    got = _rows()
    for table in want:
        assert got[table] == want[table], table


@pytest.mark.two_clocks(day="2026-12-31")  # the year 2026 of the seeded holiday calendar
def test_refresh_and_the_builds_agree_on_days_the_calendar_moved(
    participant_on: Any, pay_on: Any
) -> None:
    """Lapses due in holiday months: February 2026 unpaid lapses after the due date of May (15
    May cuti bersama, then a weekend: due Monday 18th), May unpaid after that of August (15-16 a
    weekend, 17 Proklamasi: due Tuesday 18th). On every day around those dates the daily status
    refresh (SQL, with lapsed_since) and the event and per-day rollup builds (the calendar form)
    count the same lapsed workers, and both put the lapse on the 19th, not the 16th."""
    today = timezone.localdate()
    first = date(today.year, 1, 1)
    january_only = participant_on(date(2026, 1, 5))
    through_april = participant_on(date(2026, 1, 6))
    pay_on(january_only, date(2026, 1, 10))
    pay_on(through_april, date(2026, 1, 10), months=4)
    lapse = {january_only.pk: date(2026, 5, 19), through_april.pk: date(2026, 8, 19)}

    rebuild_rollups_per_day(start=first, end=today)
    per_day = _rows()
    for model in (DailyRollup, ProvinceRollup, DemographicRollup, AgentRollup, RollupDay):
        model.objects.all().delete()
    rebuild_rollups(start=first, end=today)
    assert _rows() == per_day
    days = [date(2026, 5, d) for d in range(14, 21)] + [date(2026, 8, d) for d in range(14, 21)]
    for day in days:
        Coverage.objects.filter(pk__in=lapse).update(status="active", lapsed_since=None)
        refresh_coverage_statuses(as_of=day)
        lapsed = dict(
            Coverage.objects.filter(pk__in=lapse, status="lapsed").values_list("pk", "lapsed_since")
        )
        assert lapsed == {pk: on for pk, on in lapse.items() if on <= day}, day
        daily = DailyRollup.objects.filter(day=day)
        assert sum(r.lapsed for r in daily) == len(lapsed), day
        assert sum(r.lapses for r in daily) == sum(on == day for on in lapse.values()), day
