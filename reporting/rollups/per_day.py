"""The per-day build, the reference the event build is tested against and the benchmarks
compare with (never run by the product: `rebuild_rollups` and `refresh_today` use the event build
and the delta of reporting.rollups.build / refresh).

For a day D (local time, settings.TIME_ZONE) and every participant registered by the end of D:
- paid-through at the end of D = the last month of the payment entries whose payment was made
  (paid_at) before the end of D and that were not reversed (reversal created_at) by then;
- status at the end of D = contributions.coverage.status_for(paid-through, start month, D), in
  its SQL form (contributions.rules_sql.status) with the thresholds computed in Python
  (sql_state.state_sql);
- the same for the end of D-1, so the day's transitions are counted: a *lapse* is a participant
  lapsed at the end of D but not at the end of D-1 (or registered on D), a *reactivation* one
  lapsed at the end of D-1 and not at the end of D;
- collections on D: payment entries by paid_at, reversals and adjustments by created_at, split
  per programme by contributions.rules_sql.programme_split (= rates.quote_contribution);
  whatever cannot be split lands in `collected_other`.

Every day is rebuilt in one transaction (DELETE + INSERT ... SELECT), so readers see the old day
or the new day, never half of one. No Python loop over rows: the loop is over days, and each day
scans the ledger up to that day (hours for a year at 120 M ledger rows).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.db import connection, transaction

from contributions import rules_sql
from contributions.rules_sql import T

from ..cache import BUMP_SQL
from .build import covering_range
from .definitions import (
    DIMS,
    FLOWS,
    BuildResult,
    day_params,
    db_clock,
    derive_province_rollup,
)
from .sql_state import state_sql

# Money moved on the day, one row per ledger entry, with what the programme split of its payment
# entry needs (reversals: the entry they cancel) - read from the participant-keyed tables by
# joins naming the participant, which a Citus cluster runs on the nodes holding them ...
_MOVES_SQL = f"""
CREATE TEMP TABLE reporting_day_moves ON COMMIT DROP AS
WITH moves AS (
    SELECT e.participant_id, 1 AS sign, e.id AS split_entry, e.amount, p.collected_by_id,
           1 AS payments
    FROM {T.ledger} e
    JOIN {T.payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
    WHERE e.kind = 'payment' AND p.paid_at >= %(start)s AND p.paid_at < %(end)s
    UNION ALL
    SELECT r.participant_id, -1, r.reverses_id, r.amount, p.collected_by_id, -1
    FROM {T.ledger} r
    JOIN {T.ledger} e ON e.participant_id = r.participant_id AND e.id = r.reverses_id
    LEFT JOIN {T.payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
    WHERE r.kind = 'reversal' AND r.created_at >= %(start)s AND r.created_at < %(end)s
    UNION ALL
    SELECT participant_id, 0, NULL, amount, NULL, 0
    FROM {T.ledger}
    WHERE kind = 'adjustment' AND created_at >= %(start)s AND created_at < %(end)s
)
SELECT m.participant_id, m.sign, m.amount, m.collected_by_id, m.payments,
       k.id IS NOT NULL AS split, k.period_start, k.months, k.declared_income, k.jht, k.sector,
       k.payer_type
FROM moves m
LEFT JOIN (
    SELECT pe.participant_id, pe.id, pe.period_start, pe.months, pp.declared_income, pp.jht,
           o.sector, py.payer_type
    FROM {T.ledger} pe
    JOIN {T.payment} py ON py.participant_id = pe.participant_id AND py.id = pe.payment_id
    JOIN {T.participant} pp ON pp.id = pe.participant_id
    JOIN {T.occupation} o ON o.code = pp.occupation_id
) k ON k.participant_id = m.participant_id AND k.id = m.split_entry
"""  # noqa: S608

# ... then split by the contributions rule over the day's copies of the schedule, discounts and
# history (rules_sql.copy_split_sources: the statement reads temporary tables only, which a
# cluster leaves to PostgreSQL; reporting.rollups.sql_money explains why). Reversals carry the
# split of the payment they cancel, negated.
SOURCES_PREFIX = "reporting_day"
COPIES = rules_sql.copied_sources(SOURCES_PREFIX)
_SPLIT = rules_sql.programme_split(
    period_start="m.period_start",
    months="m.months",
    declared_income="m.declared_income",
    jht="m.jht",
    sector="m.sector",
    payer_type="m.payer_type",
    history_pid="m.participant_id",
    sources=rules_sql.copied_sources(SOURCES_PREFIX),
)
_MONEY_SQL = f"""
CREATE TEMP TABLE reporting_day_money ON COMMIT DROP AS
SELECT m.participant_id, m.collected_by_id, m.payments, m.amount,
       m.sign * COALESCE(sp.jkk, 0) AS jkk, m.sign * COALESCE(sp.jkm, 0) AS jkm,
       m.sign * COALESCE(sp.jht, 0) AS jht,
       m.amount - m.sign * COALESCE(sp.jkk + sp.jkm + sp.jht, 0) AS other
FROM reporting_day_moves m
LEFT JOIN LATERAL ({_SPLIT}) sp ON m.split
"""  # noqa: S608

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


def build_day(day: date) -> int:
    """Rebuild one day's rollup rows (one transaction); returns the number of rows written."""
    params = day_params(day)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM reporting_dailyrollup WHERE day = %s", [day])
        cursor.execute("DELETE FROM reporting_agentrollup WHERE day = %s", [day])
        cursor.execute("DELETE FROM reporting_demographicrollup WHERE day = %s", [day])
        cursor.execute(state_sql(), params)
        cursor.execute(_MOVES_SQL, params)
        # The split's copies are ON COMMIT DROP: made again after each day's commit, but kept
        # for the next day inside an enclosing transaction (a test's), where dropping and
        # re-creating them every day would hold the locks of every dropped table until its end
        # (a year of days ran out of max_locks_per_transaction). rebuild_rollups_per_day drops
        # them when it ends, so a later build copies the sources afresh.
        cursor.execute("SELECT to_regclass(%s) IS NULL", [f"pg_temp.{COPIES.history}"])
        if cursor.fetchone()[0]:
            for sql in rules_sql.copy_split_sources(SOURCES_PREFIX):
                cursor.execute(sql)
        cursor.execute(_MONEY_SQL)
        cursor.execute(_daily_insert(), params)
        rows = cursor.rowcount
        cursor.execute(_AGENT_INSERT, params)
        cursor.execute(_DEMOGRAPHIC_INSERT, params)
        derive_province_rollup(cursor, day, day)
        cursor.execute(
            "INSERT INTO reporting_rollupday (day, built_at, seconds)"
            " VALUES (%s, %s, %s) ON CONFLICT (day)"
            " DO UPDATE SET built_at = EXCLUDED.built_at, seconds = EXCLUDED.seconds",
            [day, db_clock(cursor), time.monotonic() - started],
        )
        cursor.execute(BUMP_SQL)  # the figures cache's key (reporting/cache.py)
        cursor.execute("DROP TABLE reporting_day_state")
        cursor.execute("DROP TABLE reporting_day_money, reporting_day_moves")
    return rows


def drop_day_copies() -> None:
    """The split's copies build_day left (inside an enclosing transaction), if any."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"pg_temp.{COPIES.history}"])
        if cursor.fetchone()[0]:
            cursor.execute(rules_sql.drop_split_sources(SOURCES_PREFIX))


def rebuild_rollups_per_day(*, start: date, end: date) -> BuildResult:
    """The previous build, kept as the reference the tests and the benchmark compare with: the
    same range rules, then `build_day` for each day (a scan of the ledger per day)."""
    if end < start:
        raise ValueError("end is before start")
    started = time.monotonic()
    start, end, _chain = covering_range(start, end)
    rows = 0
    day = start
    while day <= end:
        rows += build_day(day)
        day += timedelta(days=1)
    drop_day_copies()  # (on an error the enclosing transaction's rollback removes them)
    return BuildResult(days=(end - start).days + 1, rows=rows, seconds=time.monotonic() - started)
