"""Scenario 11: one month's Perisai commission statements on the generated data set, vs a plain
aggregate over the same month, in the same run.

    .venv/bin/python -m bench --size 10k --existing --only 11

Measured: `contributions.commissions.services.compute_month` for the last complete month (every
agent's fee, incentive-by-band and clawback lines, every office's share lines, the statements'
totals: set-based SQL), against the baseline "SUM of the month's payment entries grouped by the
registering agent" (one GROUP BY over the ledger joined to the participants). Each run is inside a
transaction that is rolled back: the data set is left as it was. The generator makes no Perisai
offices, so each run first puts every agent under one office per branch (in the same rolled-back
transaction, not timed), so the office path is measured too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import ms, percentile, ratio, run_alone, use_database

BASELINE = """
SELECT p.registered_by_id, sum(e.amount)
FROM contributions_ledgerentry e JOIN enrollment_participant p ON p.id = e.participant_id
WHERE e.kind = 'payment' AND e.created_at >= %s AND e.created_at < %s
GROUP BY 1
"""

OFFICES = """
WITH o AS (
    INSERT INTO contributions_perisaioffice (code, name, branch_id)
    SELECT 'BENCH-' || b.code, 'Bench office ' || b.code, b.id FROM enrollment_branch b
    RETURNING id, branch_id
)
INSERT INTO contributions_perisaimembership (office_id, agent_id, from_month)
SELECT o.id, s.id, %s FROM o JOIN enrollment_staffprofile s ON s.branch_id = o.branch_id
WHERE s.role = 'agent'
"""


class Rollback(Exception):
    pass


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url)
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from contributions.commissions.services import MonthResult, _bounds, compute_month
    from contributions.coverage import month_start
    from contributions.rates import add_months

    title = "11. Commission month"
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('contributions_commissionstatement') IS NOT NULL")
        present = cur.fetchone()[0]
    if not present:
        try:
            call_command("migrate", "audit", "0012_commissions", verbosity=0)
        except Exception as exc:
            return {"scenario": title, "rows": [], "notes": f"skipped: cannot migrate ({exc})"}
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass('contributions_commissionstatement') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {
                    "scenario": title,
                    "rows": [],
                    "notes": "skipped: contributions.0024_commissions is recorded as applied but "
                    "its tables are missing (the data set was migrated while the file was empty).",
                }
    month = add_months(month_start(timezone.localdate()), -1)
    start, end = _bounds(month)
    repeat = 1 if args.size == "10m" else (3 if args.quick else 5)

    def one_compute() -> tuple[float, MonthResult]:
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute(OFFICES, [month])
                t = time.perf_counter()
                result = compute_month(month=month)
                seconds = time.perf_counter() - t
                raise Rollback
        except Rollback:
            return seconds, result

    def one_baseline() -> float:
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(BASELINE, [start, end])
            cur.fetchall()
        return time.perf_counter() - t

    one_baseline()  # warm the cache for both (the first run reads the month's pages)
    computes, baselines = [], []
    result = None
    for _ in range(repeat):  # interleaved: both see the same cache and load
        seconds, result = one_compute()
        computes.append(seconds)
        baselines.append(one_baseline())
    assert result is not None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM contributions_ledgerentry WHERE created_at >= %s "
            "AND created_at < %s",
            [start, end],
        )
        entries = cur.fetchone()[0]
    c50, b50 = statistics.median(computes), statistics.median(baselines)
    rows = [
        {
            "month": f"{month:%Y-%m}",
            "ledger entries in the month": f"{entries:,}",
            "agent / office statements": f"{result.agent_statements:,} / "
            f"{result.office_statements:,}",
            "lines": f"{result.lines:,}",
            "compute_month p50": ms(c50),
            "compute_month max": ms(max(computes)),
            "plain SUM by agent p50 (baseline)": ms(b50),
            "ratio": ratio(c50, b50),
        }
    ]
    notes = (
        f"{repeat} run(s) each, interleaved, real clock ({timezone.localdate()}); each "
        f"compute_month rolled back. Baseline: {' '.join(BASELINE.split())}. p95 = max at "
        f"this number of runs ({ms(percentile(computes, 95))})."
    )
    return {"scenario": title, "rows": rows, "notes": notes}


if __name__ == "__main__":
    run_alone(run)
