"""Every participant's status at the end of a day and of the day before, from the ledger (the
per-day build's state, and the delta refresh's before and after).

For the end of D and of D-1: paid-through = the last month of the payment entries paid before
then and not reversed by then (rules_sql.paid_through); the status is the contributions rule
(rules_sql.status with coverage.month_start / lapse_threshold of the day, bound as
%(month_d)s / %(thr_d)s and %(month_p)s / %(thr_p)s by definitions.day_params)."""

from __future__ import annotations

from contributions import rules_sql
from contributions.rules_sql import T

_PAID_THROUGH = rules_sql.paid_through("e")
_S_D = rules_sql.status("n.nu_d", "%(month_d)s", "%(thr_d)s")
_S_P = rules_sql.status("n.nu_p", "%(month_p)s", "%(thr_p)s")
_NU_D = rules_sql.next_unpaid("pay.pt_d", "s.sm")
_NU_P = rules_sql.next_unpaid("pay.pt_p", "s.sm")


def state_sql(table: str = "reporting_day_state", *, touched: str | None = None) -> str:
    """Every participant's status at the end of the day and of the day before, into the temp
    table `table`. With `touched` (a table of participant ids `pid`): only those participants,
    and only the ledger entries and participants up to the marks `%(mark)s` / `%(pmark)s` (the
    delta refresh).

    (The age is of two timestamps: of two dates PostgreSQL would take timestamptz, whose age()
    is a stable function, which a Citus cluster does not push down in a subquery without a
    FROM clause; for whole days both give the same years.)"""
    if touched is None:
        reversal_join = (
            f"LEFT JOIN {T.ledger} r"
            " ON r.participant_id = e.participant_id AND r.reverses_id = e.id"
        )
        entry_filter = participant_filter = ""
    else:
        # one index probe per entry (the unique index on reverses_id), never a scan of it
        reversal_join = (
            f"LEFT JOIN LATERAL (SELECT x.created_at FROM {T.ledger} x"  # noqa: S608
            " WHERE x.participant_id = e.participant_id AND x.reverses_id = e.id"
            " AND x.id <= %(mark)s LIMIT 1) r ON true"
        )
        entry_filter = f"AND e.id <= %(mark)s AND e.participant_id IN (SELECT pid FROM {touched})"  # noqa: S608
        participant_filter = f"AND pa.id <= %(pmark)s AND pa.id IN (SELECT pid FROM {touched})"  # noqa: S608
    return f"""
CREATE TEMP TABLE {table} ON COMMIT DROP AS
WITH pay AS (
    SELECT e.participant_id,
           max({_PAID_THROUGH}) FILTER (
               WHERE r.created_at IS NULL OR r.created_at >= %(end)s) AS pt_d,
           max({_PAID_THROUGH}) FILTER (
               WHERE p.paid_at < %(start)s AND (r.created_at IS NULL OR r.created_at >= %(start)s)
           ) AS pt_p
    FROM {T.ledger} e
    JOIN {T.payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
    {reversal_join}
    WHERE e.kind = 'payment' AND p.paid_at < %(end)s {entry_filter}
    GROUP BY e.participant_id
)
SELECT pa.id, pa.province_id, pa.regency_id, pa.occupation_id, pa.channel, pa.partner_id,
       pa.sex, pa.registered_by_id,
       CASE WHEN a.age < 25 THEN '15-24' WHEN a.age < 35 THEN '25-34' WHEN a.age < 45 THEN '35-44'
            WHEN a.age < 55 THEN '45-54' ELSE '55+' END AS age_band,
       pa.created_at >= %(start)s AS is_new,
       {_S_D} AS s_d,
       {_S_P} AS s_p
FROM {T.participant} pa
LEFT JOIN {T.coverage} c ON c.participant_id = pa.id
LEFT JOIN pay ON pay.participant_id = pa.id
CROSS JOIN LATERAL (
    SELECT COALESCE(c.start_month, date_trunc('month', pa.created_at AT TIME ZONE %(tz)s)::date)
           AS sm
) s
CROSS JOIN LATERAL (
    SELECT {_NU_D} AS nu_d,
           {_NU_P} AS nu_p,
           date_part('year', age(%(day)s::date::timestamp, pa.birth_date::timestamp)) AS age
) n
CROSS JOIN LATERAL (SELECT n.age) a
WHERE pa.created_at < %(end)s {participant_filter}
"""  # noqa: S608
