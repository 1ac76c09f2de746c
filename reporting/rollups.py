"""The daily rollups (DailyRollup, DemographicRollup, AgentRollup) from the participants,
coverage and ledger.

`rebuild_rollups` (command, beat task) uses the event build of reporting.rollup_events: one pass
over the ledger for the whole range; `refresh_today` applies the delta of the entries added
since the build. This module keeps the definitions and the per-day build (`build_day`), which
is the reference the event build is tested against and the previous refresh the benchmark
compares with. The per-day build:

For a day D (local time, settings.TIME_ZONE) and every participant registered by the end of D:
- paid-through at the end of D = the last month of the payment entries whose payment was made
  (paid_at) before the end of D and that were not reversed (reversal created_at) by then;
- status at the end of D = contributions.coverage.status_for(paid-through, start month, D), written
  here in SQL with the same thresholds (`month_start`, `lapse_threshold`) computed in Python;
- the same for the end of D-1, so the day's transitions are counted: a *lapse* is a participant
  lapsed at the end of D but not at the end of D-1 (or registered on D), a *reactivation* one
  lapsed at the end of D-1 and not at the end of D;
- collections on D: payment entries by paid_at, reversals and adjustments by created_at, split
  per programme month by month with the rate schedule and discounts in force (the rounding of
  contributions.rates.quote_contribution); whatever cannot be split lands in `collected_other`.

Every day is rebuilt in one transaction (DELETE + INSERT ... SELECT), so readers see the old day
or the new day, never half of one. No Python loop over rows: the loop is over days, and each day
scans the ledger up to that day (hours for a year at 120 M ledger rows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from contributions import coverage as rules

from .cache import BUMP_SQL

AGE_BANDS = ("15-24", "25-34", "35-44", "45-54", "55+")

_STATE_SQL = """
CREATE TEMP TABLE {table} ON COMMIT DROP AS
WITH pay AS (
    SELECT e.participant_id,
           max((e.period_start + make_interval(months => e.months - 1))::date) FILTER (
               WHERE r.created_at IS NULL OR r.created_at >= %(end)s) AS pt_d,
           max((e.period_start + make_interval(months => e.months - 1))::date) FILTER (
               WHERE p.paid_at < %(start)s AND (r.created_at IS NULL OR r.created_at >= %(start)s)
           ) AS pt_p
    FROM contributions_ledgerentry e
    JOIN contributions_payment p ON p.id = e.payment_id
    {reversal_join}
    WHERE e.kind = 'payment' AND p.paid_at < %(end)s {entry_filter}
    GROUP BY e.participant_id
)
SELECT pa.id, pa.province_id, pa.regency_id, pa.occupation_id, pa.channel, pa.partner_id,
       pa.sex, pa.registered_by_id,
       CASE WHEN a.age < 25 THEN '15-24' WHEN a.age < 35 THEN '25-34' WHEN a.age < 45 THEN '35-44'
            WHEN a.age < 55 THEN '45-54' ELSE '55+' END AS age_band,
       pa.created_at >= %(start)s AS is_new,
       CASE WHEN n.nu_d > %(month_d)s THEN 'active' WHEN n.nu_d <= %(thr_d)s THEN 'lapsed'
            ELSE 'grace' END AS s_d,
       CASE WHEN n.nu_p > %(month_p)s THEN 'active' WHEN n.nu_p <= %(thr_p)s THEN 'lapsed'
            ELSE 'grace' END AS s_p
FROM enrollment_participant pa
LEFT JOIN contributions_coverage c ON c.participant_id = pa.id
LEFT JOIN pay ON pay.participant_id = pa.id
CROSS JOIN LATERAL (
    SELECT COALESCE(c.start_month, date_trunc('month', pa.created_at AT TIME ZONE %(tz)s)::date)
           AS sm
) s
CROSS JOIN LATERAL (
    SELECT COALESCE((pay.pt_d + interval '1 month')::date, s.sm) AS nu_d,
           COALESCE((pay.pt_p + interval '1 month')::date, s.sm) AS nu_p,
           date_part('year', age(%(day)s::date, pa.birth_date)) AS age
) n
CROSS JOIN LATERAL (SELECT n.age) a
WHERE pa.created_at < %(end)s {participant_filter}
"""


def state_sql(table: str = "reporting_day_state", *, touched: str | None = None) -> str:
    """Every participant's status at the end of the day and of the day before. With `touched`
    (a table of participant ids `pid`): only those participants, and only the ledger entries
    and participants up to the marks `%(mark)s` / `%(pmark)s` (the delta refresh)."""
    if touched is None:
        return _STATE_SQL.format(
            table=table,
            reversal_join="LEFT JOIN contributions_ledgerentry r ON r.reverses_id = e.id",
            entry_filter="",
            participant_filter="",
        )
    return _STATE_SQL.format(
        table=table,
        # one index probe per entry (the unique index on reverses_id), never a scan of it
        reversal_join="LEFT JOIN LATERAL (SELECT x.created_at FROM contributions_ledgerentry x"
        " WHERE x.reverses_id = e.id AND x.id <= %(mark)s LIMIT 1) r ON true",
        entry_filter=f"AND e.id <= %(mark)s AND e.participant_id IN (SELECT pid FROM {touched})",  # noqa: S608
        participant_filter=f"AND pa.id <= %(pmark)s AND pa.id IN (SELECT pid FROM {touched})",  # noqa: S608
    )


# Money moved on the day, one row per ledger entry, with the programme split of payment entries
# (reversals carry the split of the payment they cancel, negated).
_MONEY_SQL = """
CREATE TEMP TABLE reporting_day_money ON COMMIT DROP AS
WITH moves AS (
    SELECT e.participant_id, 1 AS sign, e.id AS split_entry, e.amount, p.collected_by_id,
           1 AS payments
    FROM contributions_ledgerentry e
    JOIN contributions_payment p ON p.id = e.payment_id
    WHERE e.kind = 'payment' AND p.paid_at >= %(start)s AND p.paid_at < %(end)s
    UNION ALL
    SELECT r.participant_id, -1, r.reverses_id, r.amount, p.collected_by_id, -1
    FROM contributions_ledgerentry r
    JOIN contributions_ledgerentry e ON e.id = r.reverses_id
    LEFT JOIN contributions_payment p ON p.id = e.payment_id
    WHERE r.kind = 'reversal' AND r.created_at >= %(start)s AND r.created_at < %(end)s
    UNION ALL
    SELECT participant_id, 0, NULL, amount, NULL, 0
    FROM contributions_ledgerentry
    WHERE kind IN ('adjustment', 'due') AND created_at >= %(start)s AND created_at < %(end)s
)
SELECT m.participant_id, m.collected_by_id, m.payments, m.amount,
       m.sign * COALESCE(sp.jkk, 0) AS jkk, m.sign * COALESCE(sp.jkm, 0) AS jkm,
       m.sign * COALESCE(sp.jht, 0) AS jht,
       m.amount - m.sign * COALESCE(sp.jkk + sp.jkm + sp.jht, 0) AS other
FROM moves m
LEFT JOIN LATERAL (
    SELECT sum(CASE WHEN d.jkk_pct IS NULL THEN b.jkk
                    ELSE (2 * b.jkk * (100 - d.jkk_pct) + 100) / 200 END) AS jkk,
           sum(CASE WHEN d.jkm_pct IS NULL THEN b.jkm
                    ELSE (2 * b.jkm * (100 - d.jkm_pct) + 100) / 200 END) AS jkm,
           sum(CASE WHEN d.jht_pct IS NULL THEN b.jht
                    ELSE (2 * b.jht * (100 - d.jht_pct) + 100) / 200 END) AS jht
    FROM contributions_ledgerentry pe
    JOIN enrollment_participant pp ON pp.id = pe.participant_id
    JOIN enrollment_occupation o ON o.code = pp.occupation_id
    CROSS JOIN generate_series(0, pe.months - 1) g(i)
    CROSS JOIN LATERAL (SELECT (pe.period_start + make_interval(months => g.i))::date AS month) mm
    CROSS JOIN LATERAL (
        SELECT s.jkk_rate_bp, s.jkm_monthly, s.jht_rate_bp FROM contributions_rateschedule s
        WHERE s.effective_from <= mm.month ORDER BY s.effective_from DESC LIMIT 1
    ) s
    CROSS JOIN LATERAL (
        SELECT (2 * pp.declared_income * s.jkk_rate_bp + 10000) / 20000 AS jkk,
               s.jkm_monthly::bigint AS jkm,
               CASE WHEN pp.jht THEN (2 * pp.declared_income * s.jht_rate_bp + 10000) / 20000
                    ELSE 0 END AS jht
    ) b
    CROSS JOIN LATERAL (
        SELECT max(x.percent) FILTER (WHERE 'JKK' = ANY(x.progs)) AS jkk_pct,
               max(x.percent) FILTER (WHERE 'JKM' = ANY(x.progs)) AS jkm_pct,
               max(x.percent) FILTER (WHERE 'JHT' = ANY(x.progs)) AS jht_pct
        FROM (SELECT rd.percent,
                     string_to_array(replace(rd.programmes, ' ', ''), ',') AS progs
              FROM contributions_ratediscount rd
              WHERE rd.first_month <= mm.month AND rd.last_month >= mm.month
                AND rd.sector IN ('', o.sector)) x
    ) d
    WHERE pe.id = m.split_entry
) sp ON m.split_entry IS NOT NULL
"""

DIMS = ("province_id", "regency_id", "occupation_id", "channel", "partner_id")
FLOWS = (
    "new_registrations",
    "reactivations",
    "lapses",
    "payments",
    "collected_jkk",
    "collected_jkm",
    "collected_jht",
    "collected_other",
    "collected_total",
)

PROVINCE_DIMS = ("province_id", "occupation_id", "channel", "partner_id")
FIGURES = ("registered", "active", "grace", "lapsed", *FLOWS, *(f"ytd_{f}" for f in FLOWS))


def province_rollup_sql() -> str:
    """DailyRollup without the regency (reporting.models.ProvinceRollup) for the days
    %(first)s..%(last)s: run after those days' DailyRollup rows are written, in the same
    transaction, so the two tables always hold the same day."""
    dims = ", ".join(PROVINCE_DIMS)
    figures = ", ".join(FIGURES)
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    return f"""
INSERT INTO reporting_provincerollup (day, {dims}, {figures})
SELECT day, {dims}, {sums} FROM reporting_dailyrollup
WHERE day BETWEEN %(first)s AND %(last)s
GROUP BY day, {dims}
"""  # noqa: S608


def derive_province_rollup(cursor: Any, first: date, last: date) -> None:
    """Replace the ProvinceRollup rows of first..last with the sums of their DailyRollup rows."""
    cursor.execute(
        "DELETE FROM reporting_provincerollup WHERE day BETWEEN %s AND %s", [first, last]
    )
    cursor.execute(province_rollup_sql(), {"first": first, "last": last})


_DAILY_TODAY = """
SELECT st.province_id, st.regency_id, st.occupation_id, st.channel, st.partner_id,
       count(*) AS registered,
       count(*) FILTER (WHERE st.s_d = 'active') AS active,
       count(*) FILTER (WHERE st.s_d = 'grace') AS grace,
       count(*) FILTER (WHERE st.s_d = 'lapsed') AS lapsed,
       count(*) FILTER (WHERE st.is_new) AS new_registrations,
       count(*) FILTER (WHERE NOT st.is_new AND st.s_p = 'lapsed' AND st.s_d <> 'lapsed')
           AS reactivations,
       count(*) FILTER (WHERE st.s_d = 'lapsed' AND (st.is_new OR st.s_p <> 'lapsed')) AS lapses,
       COALESCE(sum(mo.payments), 0) AS payments, COALESCE(sum(mo.jkk), 0) AS collected_jkk,
       COALESCE(sum(mo.jkm), 0) AS collected_jkm, COALESCE(sum(mo.jht), 0) AS collected_jht,
       COALESCE(sum(mo.other), 0) AS collected_other,
       COALESCE(sum(mo.amount), 0) AS collected_total
FROM reporting_day_state st
LEFT JOIN (
    SELECT participant_id, sum(payments) AS payments, sum(jkk) AS jkk, sum(jkm) AS jkm,
           sum(jht) AS jht, sum(other) AS other, sum(amount) AS amount
    FROM reporting_day_money GROUP BY participant_id
) mo ON mo.participant_id = st.id
GROUP BY st.province_id, st.regency_id, st.occupation_id, st.channel, st.partner_id
"""

_DEMOGRAPHIC_INSERT = """
INSERT INTO reporting_demographicrollup (day, province_id, occupation_id, partner_id, sex,
                                         age_band, registered, active, grace, lapsed)
SELECT %(day)s, province_id, occupation_id, partner_id, sex, age_band, count(*),
       count(*) FILTER (WHERE s_d = 'active'), count(*) FILTER (WHERE s_d = 'grace'),
       count(*) FILTER (WHERE s_d = 'lapsed')
FROM reporting_day_state
GROUP BY province_id, occupation_id, partner_id, sex, age_band
"""


def _daily_insert() -> str:
    """Today's groups plus yesterday's year-to-date sums, grouped again: year-to-date flows
    carry forward (a group with no participant today keeps its year-to-date sums)."""
    dims = ", ".join(DIMS)
    flows = ", ".join(FLOWS)
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    zeros = ", ".join("0" for _f in FLOWS)
    flows_as_ytd = ", ".join(f"{f} AS ytd_{f}" for f in FLOWS)
    sum_flows = ", ".join(f"sum({f})" for f in FLOWS)
    sum_ytd = ", ".join(f"sum(ytd_{f})" for f in FLOWS)
    return f"""
INSERT INTO reporting_dailyrollup (day, {dims}, registered, active, grace, lapsed, {flows}, {ytd})
SELECT %(day)s, {dims}, sum(registered), sum(active), sum(grace), sum(lapsed), {sum_flows},
       {sum_ytd}
FROM (
    SELECT {dims}, registered, active, grace, lapsed, {flows}, {flows_as_ytd}
    FROM ({_DAILY_TODAY}) t
    UNION ALL
    SELECT {dims}, 0, 0, 0, 0, {zeros}, {ytd}
    FROM reporting_dailyrollup WHERE day = %(prev)s AND %(same_year)s
) u
GROUP BY {dims}
"""  # noqa: S608


_AGENT_INSERT = """
INSERT INTO reporting_agentrollup (day, agent_id, branch_id, province_id, registered, active,
                                   new_registrations, collected_total, ytd_new_registrations,
                                   ytd_collected_total)
SELECT %(day)s, u.agent_id, sp.branch_id, COALESCE(b.province_id, ''), sum(u.registered),
       sum(u.active), sum(u.new_registrations), sum(u.collected),
       sum(u.ytd_new_registrations), sum(u.ytd_collected)
FROM (
    SELECT registered_by_id AS agent_id, count(*) AS registered,
           count(*) FILTER (WHERE s_d = 'active') AS active,
           count(*) FILTER (WHERE is_new) AS new_registrations, 0::bigint AS collected,
           count(*) FILTER (WHERE is_new) AS ytd_new_registrations, 0::bigint AS ytd_collected
    FROM reporting_day_state WHERE registered_by_id IS NOT NULL GROUP BY registered_by_id
    UNION ALL
    SELECT collected_by_id, 0, 0, 0, sum(amount), 0, sum(amount)
    FROM reporting_day_money WHERE collected_by_id IS NOT NULL GROUP BY collected_by_id
    UNION ALL
    SELECT agent_id, 0, 0, 0, 0, ytd_new_registrations, ytd_collected_total
    FROM reporting_agentrollup WHERE day = %(prev)s AND %(same_year)s
) u
JOIN enrollment_staffprofile sp ON sp.id = u.agent_id
LEFT JOIN enrollment_branch b ON b.id = sp.branch_id
GROUP BY u.agent_id, sp.branch_id, b.province_id
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The local day as [start, end) aware datetimes."""
    start = timezone.make_aware(datetime.combine(day, dtime.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), dtime.min))


def day_params(day: date) -> dict[str, Any]:
    start, end = day_bounds(day)
    prev = day - timedelta(days=1)
    return {
        "day": day,
        "start": start,
        "end": end,
        "tz": timezone.get_current_timezone_name(),
        "month_d": rules.month_start(day),
        "thr_d": rules.lapse_threshold(day),
        "month_p": rules.month_start(prev),
        "thr_p": rules.lapse_threshold(prev),
        "prev": prev,
        "same_year": prev.year == day.year,
    }


@dataclass
class BuildResult:
    days: int
    rows: int
    seconds: float


def build_day(day: date) -> int:
    """Rebuild one day's rollup rows (one transaction); returns the number of rows written."""
    params = day_params(day)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM reporting_dailyrollup WHERE day = %s", [day])
        cursor.execute("DELETE FROM reporting_agentrollup WHERE day = %s", [day])
        cursor.execute("DELETE FROM reporting_demographicrollup WHERE day = %s", [day])
        cursor.execute(state_sql(), params)
        cursor.execute(_MONEY_SQL, params)
        cursor.execute(_daily_insert(), params)
        rows = cursor.rowcount
        cursor.execute(_AGENT_INSERT, params)
        cursor.execute(_DEMOGRAPHIC_INSERT, params)
        derive_province_rollup(cursor, day, day)
        cursor.execute(
            "INSERT INTO reporting_rollupday (day, built_at, seconds)"
            " VALUES (%s, clock_timestamp(), %s) ON CONFLICT (day)"
            " DO UPDATE SET built_at = clock_timestamp(), seconds = EXCLUDED.seconds",
            [day, time.monotonic() - started],
        )
        cursor.execute(BUMP_SQL)  # the figures cache's key (reporting/cache.py)
        cursor.execute("DROP TABLE reporting_day_state")
        cursor.execute("DROP TABLE reporting_day_money")
    return rows


def _range(start: date, end: date) -> tuple[date, date, bool]:
    """The range a rebuild of `start`..`end` must cover. Year-to-date sums chain from the day
    before: from 1 January unless that day is built; and every later built day of the year
    depends on this range, so the range runs to the last of them. Also: whether to chain."""
    from .models import RollupDay

    if (start.month, start.day) != (1, 1) and not RollupDay.objects.filter(
        day=start - timedelta(days=1)
    ).exists():
        start = date(start.year, 1, 1)
    later = RollupDay.objects.filter(day__gt=end, day__year=end.year).order_by("-day").first()
    if later is not None:
        end = later.day
    return start, end, (start.month, start.day) != (1, 1)


def rebuild_rollups(*, start: date, end: date) -> BuildResult:
    """Rebuild every day from `start` to `end` inclusive, event-based: one pass over the ledger
    for the whole range, one transaction (reporting.rollup_events). The year-to-date sums chain
    from the day before `start`: if that day was never built, the rebuild starts on 1 January
    of `start`'s year; later built days of the same year are rebuilt too. Raises ValueError if
    end is before start."""
    if end < start:
        raise ValueError("end is before start")
    from .rollup_events import build_range

    started = time.monotonic()
    start, end, chain = _range(start, end)
    rows = build_range(start, end, chain=chain)
    return BuildResult(days=(end - start).days + 1, rows=rows, seconds=time.monotonic() - started)


def rebuild_rollups_per_day(*, start: date, end: date) -> BuildResult:
    """The previous build, kept as the reference the tests and the benchmark compare with: the
    same range rules, then `build_day` for each day (a scan of the ledger per day)."""
    if end < start:
        raise ValueError("end is before start")
    started = time.monotonic()
    start, end, _chain = _range(start, end)
    rows = 0
    day = start
    while day <= end:
        rows += build_day(day)
        day += timedelta(days=1)
    return BuildResult(days=(end - start).days + 1, rows=rows, seconds=time.monotonic() - started)


def refresh_today() -> BuildResult:
    """Intraday refresh. When today and yesterday are built by the event build, today's rows
    are updated from the ledger entries and participants added since (`rollup_events.
    refresh_day`, cost ~ the new entries); otherwise today's rows (and yesterday's if it was
    never built, e.g. after midnight before the nightly run) are rebuilt."""
    from .models import RollupDay
    from .rollup_events import refresh_day

    today = timezone.localdate()
    started = time.monotonic()
    yesterday = today - timedelta(days=1)
    if RollupDay.objects.filter(day=yesterday).exists():
        changed = refresh_day(today)
        if changed is not None:
            return BuildResult(days=1, rows=changed, seconds=time.monotonic() - started)
        return rebuild_rollups(start=today, end=today)
    return rebuild_rollups(start=yesterday, end=today)
