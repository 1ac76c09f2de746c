"""The intraday refresh: a built day's rows brought up to date with the entries and participants
added since its build."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from contributions import rules_sql
from contributions.rules_sql import T

from ..cache import BUMP_SQL
from ..models import RollupDay
from .build import rebuild_rollups
from .definitions import (
    DIMS,
    FLOWS,
    LOCK_KEY,
    BuildResult,
    day_bounds,
    day_params,
    db_clock,
    derive_province_rollup,
    marks,
)
from .sql_money import MONEY_SPLIT_VIEW, MONEY_SQL, SOURCES_PREFIX, SPLIT_SQL
from .sql_state import state_sql


# --- the intraday delta --------------------------------------------------------------------------
def _delta_daily_sql() -> str:
    dims = ", ".join(DIMS)
    sums = ", ".join(f"sum({f}) AS {f}" for f in FLOWS)
    return f"""
CREATE TEMP TABLE rd_daily ON COMMIT DROP AS
SELECT {dims}, sum(registered) AS registered, sum(active) AS active, sum(grace) AS grace,
       sum(lapsed) AS lapsed, {sums}
FROM (
    SELECT {dims}, sign AS registered, sign * (s_d = 'active')::int AS active,
           sign * (s_d = 'grace')::int AS grace, sign * (s_d = 'lapsed')::int AS lapsed,
           sign * is_new::int AS new_registrations,
           sign * (NOT is_new AND s_p = 'lapsed' AND s_d <> 'lapsed')::int AS reactivations,
           sign * (s_d = 'lapsed' AND (is_new OR s_p <> 'lapsed'))::int AS lapses,
           0 AS payments, 0::bigint AS collected_jkk, 0::bigint AS collected_jkm,
           0::bigint AS collected_jht, 0::bigint AS collected_other, 0::bigint AS collected_total
    FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
    UNION ALL
    SELECT {", ".join(f"st.{d}" for d in DIMS)}, 0, 0, 0, 0, 0, 0, 0, m.payments, m.jkk, m.jkm,
           m.jht, m.other, m.amount
    FROM rb_money_split m JOIN rd_new st ON st.id = m.pid
) u
GROUP BY {dims}
"""  # noqa: S608


def _delta_apply_daily_sql() -> str:
    stocks = ("registered", "active", "grace", "lapsed")
    sets = ", ".join(
        [f"{c} = t.{c} + d.{c}" for c in (*stocks, *FLOWS)]
        + [f"ytd_{f} = t.ytd_{f} + d.{f}" for f in FLOWS]
    )
    match = " AND ".join(
        f"COALESCE(t.{d}, -1) = COALESCE(d.{d}, -1)" if d == "partner_id" else f"t.{d} = d.{d}"
        for d in DIMS
    )
    dims = ", ".join(DIMS)
    cols = ", ".join((*stocks, *FLOWS))
    d_cols = ", ".join(f"d.{c}" for c in (*DIMS, *stocks, *FLOWS))
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    return f"""
WITH upd AS (
    UPDATE reporting_dailyrollup t SET {sets}
    FROM (SELECT * FROM rd_daily) d WHERE t.day = %(day)s AND {match}
    RETURNING {", ".join(f"d.{d}" for d in DIMS)}
)
INSERT INTO reporting_dailyrollup (day, {dims}, {cols}, {ytd})
SELECT %(day)s, {d_cols}, {", ".join(f"d.{f}" for f in FLOWS)}
FROM rd_daily d
WHERE NOT EXISTS (SELECT 1 FROM upd t WHERE {match})
"""  # noqa: S608


_DELTA_DEMOGRAPHIC = """
WITH d AS (
    SELECT province_id, occupation_id, partner_id, sex, age_band, sum(sign) AS registered,
           sum(sign * (s_d = 'active')::int) AS active, sum(sign * (s_d = 'grace')::int) AS grace,
           sum(sign * (s_d = 'lapsed')::int) AS lapsed
    FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
    GROUP BY province_id, occupation_id, partner_id, sex, age_band
), upd AS (
    UPDATE reporting_demographicrollup t
    SET registered = t.registered + d.registered, active = t.active + d.active,
        grace = t.grace + d.grace, lapsed = t.lapsed + d.lapsed
    FROM d
    WHERE t.day = %(day)s AND t.province_id = d.province_id AND t.occupation_id = d.occupation_id
      AND COALESCE(t.partner_id, -1) = COALESCE(d.partner_id, -1) AND t.sex = d.sex
      AND t.age_band = d.age_band
    RETURNING d.province_id, d.occupation_id, d.partner_id, d.sex, d.age_band
)
INSERT INTO reporting_demographicrollup (day, province_id, occupation_id, partner_id, sex,
                                         age_band, registered, active, grace, lapsed)
SELECT %(day)s, province_id, occupation_id, partner_id, sex, age_band, registered, active, grace,
       lapsed
FROM d
WHERE registered > 0 AND NOT EXISTS (
    SELECT 1 FROM upd u WHERE u.province_id = d.province_id AND u.occupation_id = d.occupation_id
      AND COALESCE(u.partner_id, -1) = COALESCE(d.partner_id, -1) AND u.sex = d.sex
      AND u.age_band = d.age_band)
"""

_DELTA_AGENT = """
WITH d AS (
    SELECT agent_id, sum(registered) AS registered, sum(active) AS active,
           sum(new_registrations) AS new_registrations, sum(collected) AS collected
    FROM (
        SELECT registered_by_id AS agent_id, sign AS registered,
               sign * (s_d = 'active')::int AS active, sign * is_new::int AS new_registrations,
               0::bigint AS collected
        FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
        WHERE registered_by_id IS NOT NULL
        UNION ALL
        SELECT collected_by_id, 0, 0, 0, amount FROM rb_money_split
        WHERE collected_by_id IS NOT NULL
    ) u
    GROUP BY agent_id
), upd AS (
    UPDATE reporting_agentrollup t
    SET registered = t.registered + d.registered, active = t.active + d.active,
        new_registrations = t.new_registrations + d.new_registrations,
        collected_total = t.collected_total + d.collected,
        ytd_new_registrations = t.ytd_new_registrations + d.new_registrations,
        ytd_collected_total = t.ytd_collected_total + d.collected
    FROM d WHERE t.day = %(day)s AND t.agent_id = d.agent_id
    RETURNING t.agent_id
)
INSERT INTO reporting_agentrollup (day, agent_id, branch_id, province_id, registered, active,
                                   new_registrations, collected_total, ytd_new_registrations,
                                   ytd_collected_total)
SELECT %(day)s, d.agent_id, sp.branch_id, COALESCE(b.province_id, ''), d.registered, d.active,
       d.new_registrations, d.collected, d.new_registrations, d.collected
FROM d
JOIN enrollment_staffprofile sp ON sp.id = d.agent_id
LEFT JOIN enrollment_branch b ON b.id = sp.branch_id
WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE u.agent_id = d.agent_id)
"""


def refresh_day(day: date) -> int | None:
    """Bring a built day's rows up to date with the ledger entries and participants added since
    its build (ids above the marks in RollupDay), in one transaction: for the participants they
    touch, the day's contribution is computed twice - as the build saw them (entries and
    participants up to the old marks) and now - and the difference is added to the day's rows
    (stocks, flows and year-to-date flows); the new entries' money is added the same way. Cost
    ~ the new entries, not the ledger. Returns the number of touched participants, or None if
    the day was not built by the event build (no marks): then the caller rebuilds it.

    Like the rebuild, it sees the ledger as it is: a late entry for an earlier day changes that
    earlier day only at the next rebuild of it (the nightly build rebuilds yesterday), and an
    entry committed after a build although its id is below the build's mark (two concurrent
    payment transactions committing out of id order during the build) is only counted at the
    next rebuild of the day."""
    params: dict[str, Any] = day_params(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cursor.execute(
            "SELECT ledger_mark, participant_mark FROM reporting_rollupday WHERE day = %s"
            " FOR UPDATE",
            [day],
        )
        row = cursor.fetchone()
        if row is None or row[0] is None or row[1] is None:
            return None
        old_mark, old_pmark = int(row[0]), int(row[1])
        mark, pmark = marks()
        if (mark, pmark) == (old_mark, old_pmark):
            return 0
        cursor.execute(
            f"""CREATE TEMP TABLE rd_touched ON COMMIT DROP AS
               SELECT participant_id AS pid FROM {T.ledger}
               WHERE id > %(old)s AND id <= %(mark)s
               UNION
               SELECT id FROM {T.participant} WHERE id > %(oldp)s AND id <= %(pmark)s""",  # noqa: S608
            {"old": old_mark, "mark": mark, "oldp": old_pmark, "pmark": pmark},
        )
        cursor.execute("SELECT count(*) FROM rd_touched")
        counted = cursor.fetchone()
        touched = int(counted[0]) if counted else 0
        cursor.execute("ANALYZE rd_touched")
        cursor.execute(
            state_sql("rd_old", touched="rd_touched"),
            {**params, "mark": old_mark, "pmark": old_pmark},
        )
        cursor.execute(
            state_sql("rd_new", touched="rd_touched"), {**params, "mark": mark, "pmark": pmark}
        )
        start_ts, end_ts = day_bounds(day)
        # the split's sources, the history of the touched participants only (sql_money.SOURCES)
        for sql in rules_sql.copy_split_sources(SOURCES_PREFIX, "SELECT pid FROM rd_touched"):
            cursor.execute(sql)
        cursor.execute(
            MONEY_SQL,
            {**params, "start_ts": start_ts, "end": end_ts, "mark": mark, "low": old_mark},
        )
        cursor.execute(SPLIT_SQL.format(table="rb_split", source="rb_money"))
        cursor.execute(
            "CREATE TEMP TABLE rb_money_split ON COMMIT DROP AS "
            + MONEY_SPLIT_VIEW.format(money="rb_money", split="rb_split", group="")
        )
        cursor.execute(_delta_daily_sql(), params)
        cursor.execute(_delta_apply_daily_sql(), params)
        cursor.execute(_DELTA_DEMOGRAPHIC, params)
        cursor.execute(
            "DELETE FROM reporting_demographicrollup WHERE day = %s AND registered = 0", [day]
        )
        cursor.execute(_DELTA_AGENT, params)
        derive_province_rollup(cursor, day, day)
        cursor.execute(
            """UPDATE reporting_rollupday SET built_at = %s, ledger_mark = %s,
               participant_mark = %s WHERE day = %s""",
            [db_clock(cursor), mark, pmark, day],
        )
        cursor.execute(BUMP_SQL)
        for table in (
            "rd_touched",
            "rd_old",
            "rd_new",
            "rb_money",
            "rb_split",
            "rb_money_split",
            "rd_daily",
        ):
            cursor.execute(f"DROP TABLE {table}")
        cursor.execute(rules_sql.drop_split_sources(SOURCES_PREFIX))
    return touched


def refresh_today() -> BuildResult:
    """Intraday refresh. When today and yesterday are built by the event build, today's rows
    are updated from the ledger entries and participants added since (`refresh_day`, cost ~
    the new entries); otherwise today's rows (and yesterday's if it was never built, e.g. after
    midnight before the nightly run) are rebuilt."""

    today = timezone.localdate()
    started = time.monotonic()
    yesterday = today - timedelta(days=1)
    if RollupDay.objects.filter(day=yesterday).exists():
        changed = refresh_day(today)
        if changed is not None:
            return BuildResult(days=1, rows=changed, seconds=time.monotonic() - started)
        return rebuild_rollups(start=today, end=today)
    return rebuild_rollups(start=yesterday, end=today)
