"""Step 3 of the event build: the events per dimension group and day, and the daily,
demographic and agent rows run from them."""

from __future__ import annotations

from datetime import date

from contributions.rules_sql import ACTIVE_CODE, GRACE_CODE, LAPSED_CODE

from .definitions import AGE_BANDS, DEMO_KEYS, DIMS, FLOWS
from .sql_changes import IN_GROUP

_STATUS_COLUMNS = {ACTIVE_CODE: "d_active", GRACE_CODE: "d_grace", LAPSED_CODE: "d_lapsed"}


def _status_deltas(sign: str = "") -> str:
    """d_active, d_grace, d_lapsed of a change row: +1 on its new status (s_to), -1 on its old
    one (s_from, NULL for a participant's initial status); with `sign` ("x.sign * "), the old
    status moved by that sign (an age-band birthday)."""
    if sign:
        return ", ".join(
            f"{sign}(s_from = {code})::int AS {name}" for code, name in _STATUS_COLUMNS.items()
        )
    return ", ".join(
        f"(s_to = {code})::int - COALESCE((s_from = {code})::int, 0) AS {name}"
        for code, name in _STATUS_COLUMNS.items()
    )


# --- step 3: events per group and day, then the rows --------------------------------------------
def events_view_sql(start: date) -> str:
    """rb_pev: the status and registration events of each participant (gid, agent, day and
    the day's changes), a temporary *view* over rb_chg and rb_pa, read twice: by the group
    events and the agent events. The date is inlined as a literal (a view cannot take bind
    parameters); it is a `date` object, never user input."""
    s = f"'{start.isoformat()}'::date"
    return f"""
CREATE TEMP VIEW rb_pev AS
SELECT gid, agent, day, {_status_deltas()}, 0 AS new_registrations,
       (s_from = {LAPSED_CODE} AND s_to <> {LAPSED_CODE} AND day >= {s})::int AS reactivations,
       (s_to = {LAPSED_CODE} AND s_from IS DISTINCT FROM {LAPSED_CODE} AND day >= {s})::int
           AS lapses
FROM rb_chg WHERE s_from IS DISTINCT FROM s_to
UNION ALL
SELECT gid, registered_by_id, reg_day, 0, 0, 0, 1, 0, 0 FROM rb_pa WHERE reg_day >= {s}
"""  # noqa: S608


# (rb_pev holds the status and registration events only: the money rows go into the group
# events straight from rb_money_split, a view too, so no per-payment copy of the year's ledger
# is written to temp files twice more.)


# The events are grouped by (gid, day) first - gid numbers the participant's dimension group
# in rb_pa (dense_rank) - and the dimensions joined back on the grouped rows: a hash aggregate
# over narrow rows instead of a sort of ~20 M wide rows per 500,000 participants on five text
# keys (measured at 10 M participants: docs/benchmarks.md). The status events and the money rows
# are grouped apart (each aggregate keeps small states, so it stays in memory) and joined. The
# demographic events use dgid the same way.
def daily_events_sql() -> str:
    dims = ", ".join(DIMS)
    g_dims = ", ".join(f"g.{d}" for d in DIMS)
    zeros = ", ".join("0" for _f in FLOWS)
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    status_flows = ("new_registrations", "reactivations", "lapses")
    money = {
        "payments": "payments",
        "collected_jkk": "jkk",
        "collected_jkm": "jkm",
        "collected_jht": "jht",
        "collected_other": "other",
        "collected_total": "amount",
    }
    assert set(FLOWS) == {*status_flows, *money}
    st_sums = ", ".join(f"sum({f}) AS {f}" for f in status_flows)
    mo_sums = ", ".join(f"sum({money[f]}) AS {f}" for f in FLOWS if f in money)
    x_flows = ", ".join(f"COALESCE({'st' if f in status_flows else 'mo'}.{f}, 0)" for f in FLOWS)
    c_zeros = ", ".join(f"0::bigint AS c_{f}" for f in FLOWS)
    sums = ", ".join(f"sum({f}) AS {f}" for f in FLOWS)
    carries = ", ".join(f"sum(c_{f}) AS c_{f}" for f in FLOWS)
    return f"""
CREATE TEMP TABLE rb_ev ON COMMIT DROP AS
SELECT {dims}, day, sum(d_active) AS d_active, sum(d_grace) AS d_grace,
       sum(d_lapsed) AS d_lapsed, {sums}, {carries}, sum(carried) AS carried
FROM (
    SELECT {g_dims}, COALESCE(st.day, mo.day), COALESCE(st.d_active, 0),
           COALESCE(st.d_grace, 0), COALESCE(st.d_lapsed, 0), {x_flows}, {c_zeros}, 0
    FROM (
        SELECT gid, day, sum(d_active) AS d_active, sum(d_grace) AS d_grace,
               sum(d_lapsed) AS d_lapsed, {st_sums}
        FROM rb_pev GROUP BY gid, day
    ) st
    FULL JOIN (
        SELECT gid, day, {mo_sums}
        FROM rb_money_split WHERE reg_day <= day GROUP BY gid, day
    ) mo ON mo.gid = st.gid AND mo.day = st.day
    JOIN (SELECT DISTINCT gid, {dims} FROM rb_pa) g ON g.gid = COALESCE(st.gid, mo.gid)
    UNION ALL
    SELECT {dims}, %(start)s::date, 0, 0, 0, {zeros}, {ytd}, 1
    FROM reporting_dailyrollup
    WHERE day = %(p)s AND %(chain)s
      AND {IN_GROUP.format(col="province_id")}
) u({dims}, day, d_active, d_grace, d_lapsed, {", ".join(FLOWS)},
    {", ".join(f"c_{f}" for f in FLOWS)}, carried)
GROUP BY {dims}, day
"""  # noqa: S608


def _runs_sql(
    table: str,
    keys: tuple[str, ...],
    stocks: dict[str, str],
    flows: tuple[str, ...],
    ytd: dict[str, str],
) -> str:
    """The rows of every day from sparse events: running sums over the days that have events
    only (`stocks`: running over all days, `ytd`: running within the year, both name -> SQL of
    the day's delta), then each event day's values repeated until the day before the group's
    next event (flows only on the event day itself). A zero event on every 1 January inside the
    range restarts the year-to-date sums. The window sorts the events once, by group, year, day;
    the days between events are generated, never sorted."""
    k = ", ".join(keys)
    cols = sorted({c for expr in (*stocks.values(), *ytd.values()) for c in _columns(expr)})
    cols = [c for c in cols if c not in flows] + list(flows)
    zeros = ", ".join("0" for _c in cols)
    run_stocks = ", ".join(
        f"sum({expr}) OVER (PARTITION BY {k} ORDER BY yr, day) AS {name}"
        for name, expr in stocks.items()
    )
    run_ytd = ", ".join(
        f"sum({expr}) OVER (PARTITION BY {k}, yr ORDER BY day) AS {name}"
        for name, expr in ytd.items()
    )
    out_flows = [f"CASE WHEN d.day = x.day THEN x.{f} ELSE 0 END AS {f}" for f in flows]
    outer = ", ".join([*(f"x.{c}" for c in keys), *(f"x.{n}" for n in (*stocks, *ytd)), *out_flows])
    inner = ", ".join([*flows, run_stocks, *([run_ytd] if ytd else [])])
    return f"""
    SELECT d.day::date AS day, {outer}
    FROM (
        SELECT {k}, day, {inner},
               lead(day) OVER (PARTITION BY {k} ORDER BY yr, day) AS next_day
        FROM (
            SELECT {k}, day, date_part('year', day) AS yr, {", ".join(cols)} FROM {table}
            UNION ALL
            SELECT DISTINCT {k}, j.day, date_part('year', j.day), {zeros}
            FROM {table}
            CROSS JOIN (SELECT make_date(y::int, 1, 1) AS day
                        FROM generate_series(%(year_from)s::int, %(year_to)s::int) y) j
            WHERE {table}.day < j.day
        ) ev
    ) x
    CROSS JOIN LATERAL generate_series(
        GREATEST(x.day, %(start)s::date), COALESCE(x.next_day - 1, %(e)s::date), interval '1 day'
    ) d(day)
"""  # noqa: S608


def _columns(expr: str) -> list[str]:
    return [w for w in expr.replace("+", " ").split() if w.isidentifier()]


def daily_insert_sql(target: str = "reporting_dailyrollup") -> str:
    dims = ", ".join(DIMS)
    flows = ", ".join(FLOWS)
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    runs = _runs_sql(
        "rb_ev",
        DIMS,
        {"active": "d_active", "grace": "d_grace", "lapsed": "d_lapsed"},
        FLOWS,
        {**{f"ytd_{f}": f"{f} + c_{f}" for f in FLOWS}, "seen": "carried"},
    )
    return f"""
INSERT INTO {target} (day, {dims}, registered, active, grace, lapsed, {flows}, {ytd})
SELECT day, {dims}, active + grace + lapsed, active, grace, lapsed, {flows}, {ytd}
FROM ({runs}) r
WHERE active + grace + lapsed > 0 OR seen > 0
"""  # noqa: S608


# Demographic stocks: the status changes in the age band of their day, and on a birthday that
# starts the next band, the status of the day before moved from the old band to the new one.
_BANDS = ", ".join(f"'{band}'" for band in AGE_BANDS)
DEMOGRAPHIC_EVENTS_SQL = f"""
CREATE TEMP TABLE rb_dev ON COMMIT DROP AS
SELECT g.province_id, g.occupation_id, g.partner_id, g.sex,
       (ARRAY[{_BANDS}])[z.age_band + 1] AS age_band, z.day, z.d_active, z.d_grace, z.d_lapsed
FROM (
SELECT dgid, age_band, day,
       sum(d_active) AS d_active, sum(d_grace) AS d_grace, sum(d_lapsed) AS d_lapsed
FROM (
    SELECT dgid, band AS age_band, day, {_status_deltas()}
    FROM rb_chg WHERE s_from IS DISTINCT FROM s_to
    UNION ALL
    SELECT dgid, x.band, day, {_status_deltas("x.sign * ")}
    FROM rb_chg CROSS JOIN LATERAL (VALUES (x_band, -1), (band, 1)) x(band, sign)
    WHERE rb_chg.x
) y(dgid, age_band, day, d_active, d_grace, d_lapsed)
GROUP BY dgid, age_band, day
) z
JOIN (SELECT DISTINCT dgid, province_id, occupation_id, partner_id, sex FROM rb_pa) g
  ON g.dgid = z.dgid
"""  # noqa: S608


def demographic_insert_sql(target: str = "reporting_demographicrollup") -> str:
    keys = ", ".join(DEMO_KEYS)
    runs = _runs_sql(
        "rb_dev",
        DEMO_KEYS,
        {"active": "d_active", "grace": "d_grace", "lapsed": "d_lapsed"},
        (),
        {},
    )
    return f"""
INSERT INTO {target} (day, {keys}, registered, active, grace, lapsed)
SELECT day, {keys}, active + grace + lapsed, active, grace, lapsed
FROM ({runs}) r
WHERE active + grace + lapsed > 0
"""  # noqa: S608


# Agents: registrations and stocks by registered_by, collections by collected_by.
# An agent's participants and collections span provinces: each group of provinces adds its
# events to an accumulator (rb_aev_all, or the staging table of a parallel build), grouped once
# at the end with the chained year-to-date sums.
AGENT_EVENT_COLUMNS = """(agent_id bigint, day date, d_registered bigint, d_active bigint,
                              new_registrations bigint, collected numeric, seen bigint)"""
AGENT_ACCUMULATOR_SQL = f"CREATE TEMP TABLE rb_aev_all {AGENT_EVENT_COLUMNS} ON COMMIT DROP"

AGENT_GROUP_EVENTS_SQL = """
INSERT INTO {target}
SELECT agent_id, day, sum(d_registered), sum(d_active), sum(new_registrations), sum(collected),
       sum(seen)
FROM (
    SELECT agent AS agent_id, day, d_active + d_grace + d_lapsed AS d_registered, d_active,
           new_registrations, 0::bigint AS collected, 0 AS seen
    FROM rb_pev WHERE agent IS NOT NULL
    UNION ALL
    SELECT collected_by_id, day, 0, 0, 0, amount, 1
    FROM rb_money WHERE collected_by_id IS NOT NULL
) u
GROUP BY agent_id, day
"""

AGENT_EVENTS_SQL = """
CREATE TEMP TABLE rb_aev ON COMMIT DROP AS
SELECT agent_id, day, sum(d_registered) AS d_registered, sum(d_active) AS d_active,
       sum(new_registrations) AS new_registrations, sum(collected) AS collected,
       sum(c_new) AS c_new, sum(c_collected) AS c_collected, sum(seen) AS seen
FROM (
    SELECT agent_id, day, d_registered, d_active, new_registrations, collected,
           0::bigint AS c_new, 0::bigint AS c_collected, seen
    FROM {source}
    UNION ALL
    SELECT agent_id, %(start)s::date, 0, 0, 0, 0, ytd_new_registrations, ytd_collected_total, 1
    FROM reporting_agentrollup WHERE day = %(p)s AND %(chain)s
) u
GROUP BY agent_id, day
"""


def agent_insert_sql() -> str:
    runs = _runs_sql(
        "rb_aev",
        ("agent_id",),
        {"registered": "d_registered", "active": "d_active"},
        ("new_registrations", "collected"),
        {
            "ytd_new": "new_registrations + c_new",
            "ytd_collected": "collected + c_collected",
            "seen": "seen",
        },
    )
    return f"""
INSERT INTO reporting_agentrollup (day, agent_id, branch_id, province_id, registered, active,
                                   new_registrations, collected_total, ytd_new_registrations,
                                   ytd_collected_total)
SELECT x.day, x.agent_id, sp.branch_id, COALESCE(b.province_id, ''), x.registered, x.active,
       x.new_registrations, x.collected, x.ytd_new, x.ytd_collected
FROM ({runs}) x
JOIN enrollment_staffprofile sp ON sp.id = x.agent_id
LEFT JOIN enrollment_branch b ON b.id = sp.branch_id
WHERE x.registered > 0 OR x.seen > 0
"""  # noqa: S608
