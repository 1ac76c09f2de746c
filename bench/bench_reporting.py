"""Reporting at scale, every comparison in the same run:

- full rebuild of the year's rollups (event build, one pass over the ledger) vs the previous
  per-day build (a ledger scan per day) timed on a sample of days and extrapolated to the year;
- refresh of today after N new payments (delta from the id marks) vs the full rebuild, and vs
  the previous refresh (today's per-day build);
- dashboard page and progress API p50/p95 vs the naive GROUP BYs over the raw tables, with the
  figures computed from the rollups on each request and from the figures cache (warmed first).

Data: bench/generate.py (national shape). Either a database of its own, generated here:

    .venv/bin/python -m bench.bench_reporting --participants 100000

or an existing big database, left as it is apart from the reporting_* rollup tables (and the
reporting migrations, which only add columns to reporting_rollupday):

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench10m \\
        .venv/bin/python -m bench.bench_reporting --existing

The new payments, the benchmark user and its sessions are written inside a transaction that is
rolled back; so are the per-day sample builds. `--add-reversals` (own database only) reverses
the latest payment of 1 % of the participants a week after it was paid (generate.py makes none).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from bench.common import percentile

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bpjsportal_bench_reporting"

NEW_PAYMENTS = """
WITH picked AS (
    SELECT cv.participant_id, pa.jht FROM contributions_coverage cv
    JOIN enrollment_participant pa ON pa.id = cv.participant_id
    WHERE cv.status <> 'active' ORDER BY cv.participant_id LIMIT %(n)s
), pay AS (
    INSERT INTO contributions_payment (participant_id, amount, months, period_start, payer,
        channel, reference, paid_at, reactivation, created_at)
    SELECT participant_id, CASE WHEN jht THEN 36800 ELSE 16800 END, 1,
           date_trunc('month', now() AT TIME ZONE 'Asia/Jakarta')::date, 'participant',
           'ewallet', 'BENCH-REFRESH-' || participant_id, now(), false, now()
    FROM picked
    RETURNING id, participant_id, amount, months, period_start
)
INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months, period_start,
    payment_id, reason, created_at)
SELECT participant_id, 'payment', amount, months, period_start, id, '', now() FROM pay
"""

REVERSALS = """
INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months, reverses_id, reason,
    created_at)
SELECT e.participant_id, 'reversal', -e.amount, 0, e.id, 'bench', x.paid_at + interval '7 days'
FROM (SELECT DISTINCT ON (e.participant_id) e.id, p.paid_at
      FROM contributions_ledgerentry e JOIN contributions_payment p ON p.id = e.payment_id
      WHERE e.kind = 'payment' AND e.participant_id %% 100 = 7
      ORDER BY e.participant_id, e.id DESC) x
JOIN contributions_ledgerentry e ON e.id = x.id
WHERE x.paid_at + interval '7 days' < now()
"""

NAIVE = [
    """SELECT pa.province_id, cv.status, count(*) FROM enrollment_participant pa
       JOIN contributions_coverage cv ON cv.participant_id = pa.id GROUP BY 1, 2""",
    """SELECT pa.occupation_id, pa.channel, count(*) FILTER (WHERE cv.status = 'active')
       FROM enrollment_participant pa JOIN contributions_coverage cv ON cv.participant_id = pa.id
       GROUP BY 1, 2""",
    """SELECT pa.province_id, sum(e.amount) FROM contributions_ledgerentry e
       JOIN enrollment_participant pa ON pa.id = e.participant_id
       WHERE e.created_at >= %s GROUP BY 1""",
]


class Rollback(Exception):
    """Raised to roll a measurement's writes back."""


def percentiles(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), percentile(runs, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--existing", action="store_true", help="use BENCH_DATABASE_URL as is")
    parser.add_argument("--participants", type=int, default=100_000, help="own database only")
    parser.add_argument("--new-payments", type=int, default=10_000)
    parser.add_argument(
        "--sample-days",
        type=int,
        default=3,
        help="per-day build sample (0: skip it, and the "
        "previous refresh: at 10 M each is a scan of the whole ledger)",
    )
    parser.add_argument("--repeat", type=int, default=15, help="page and naive timings")
    parser.add_argument(
        "--add-reversals", action="store_true", help="writes to the ledger: own databases only"
    )
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["BENCH_DATABASE_URL"] = os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    if not args.existing:
        from bench.common import ensure_database

        ensure_database(url, fresh=True)
        subprocess.run(
            [sys.executable, "-m", "bench.generate", "--participants", str(args.participants)],
            cwd=ROOT, check=True, env=os.environ,
        )  # fmt: skip
    import django

    django.setup()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("reporting.rollups").setLevel(logging.INFO)  # the build's steps
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import override_settings
    from django.utils import timezone

    from bench.common import machine, now, verified_client
    from reporting import warming
    from reporting.rollups import rebuild_rollups, refresh_today
    from reporting.rollups.per_day import build_day

    # the reporting tables only (an existing database keeps its other tables as they are)
    call_command("migrate", "reporting", verbosity=0)
    if not args.existing:
        call_command("migrate", verbosity=0)
    if args.add_reversals:
        with connection.cursor() as c:
            c.execute("SELECT count(*) FROM contributions_ledgerentry WHERE kind = 'reversal'")
            if not c.fetchone()[0]:  # type: ignore[index]
                c.execute(REVERSALS, {})
                c.execute("ANALYZE contributions_ledgerentry")
    today = timezone.localdate()
    year_start = date(today.year, 1, 1)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM enrollment_participant")
        participants = c.fetchone()[0]  # type: ignore[index]
        c.execute("SELECT count(*), count(*) FILTER (WHERE kind = 'reversal') "
                  "FROM contributions_ledgerentry")  # fmt: skip
        ledger_rows, reversals = c.fetchone()  # type: ignore[misc]
        c.execute("SELECT count(*) FROM pg_indexes WHERE indexname IN "
                  "('payment_paid_at', 'ledger_not_payment_created')")  # fmt: skip
        indexes = c.fetchone()[0]  # type: ignore[index]
        c.execute("SELECT version()")
        pg = c.fetchone()[0].split(" on ")[0]  # type: ignore[index]
    print(f"bench_reporting {now()} on {machine()}, {pg}")
    print(f"data: {participants:,} participants, {ledger_rows:,} ledger rows "
          f"({reversals:,} reversals); reporting indexes present: {indexes}/2")  # fmt: skip

    # 1. full rebuild of the year (event build) vs the per-day build on a sample of days
    full = rebuild_rollups(start=year_start, end=today)
    with connection.cursor() as c:
        c.execute("ANALYZE reporting_dailyrollup")
        c.execute("ANALYZE reporting_demographicrollup")
        c.execute("ANALYZE reporting_agentrollup")
        c.execute("SELECT count(*) FROM reporting_dailyrollup WHERE day = %s", [today])
        rows_today = c.fetchone()[0]  # type: ignore[index]
    print(
        f"full rebuild of the year, event build: {full.seconds:.1f} s ({full.days} days, "
        f"{full.rows:,} daily rollup rows, {rows_today:,} for today)"
    )
    span = (today - year_start).days
    sample = [year_start + timedelta(days=span * (i + 1) // (args.sample_days + 1))
              for i in range(args.sample_days)]  # fmt: skip
    per_day = []
    try:
        if not sample:
            raise Rollback
        with transaction.atomic():
            for day in sample:
                t = time.perf_counter()
                build_day(day)
                per_day.append(time.perf_counter() - t)
            raise Rollback
    except Rollback:
        pass
    if per_day:
        mean = statistics.mean(per_day)
        old_year = mean * full.days
        days_s = ", ".join(f"{d} {s:.1f} s" for d, s in zip(sample, per_day, strict=True))
        print(
            f"per-day build (previous): {days_s} -> {mean:.1f} s a day, {old_year / 60:.1f} min "
            f"for the year (extrapolated); event build = {full.seconds / old_year * 100:.1f} % "
            f"of it ({old_year / full.seconds:.0f}x faster)"
        )

    # 2. refresh after N new payments (rolled back afterwards)
    try:
        with transaction.atomic():
            with connection.cursor() as c:
                c.execute(NEW_PAYMENTS, {"n": args.new_payments})
                inserted = c.rowcount
            t = time.perf_counter()
            result = refresh_today()
            refresh_s = time.perf_counter() - t
            old_refresh_s = None
            if sample:
                t = time.perf_counter()
                build_day(today)
                old_refresh_s = time.perf_counter() - t
            raise Rollback
    except Rollback:
        pass
    print(
        f"refresh of today after {inserted:,} new payments (delta, {result.rows:,} participants "
        f"touched): {refresh_s:.2f} s = {refresh_s / full.seconds * 100:.2f} % of the full "
        f"rebuild (goal <= 2 %)"
        + (
            f"; previous refresh (today's per-day build): {old_refresh_s:.1f} s"
            if old_refresh_s is not None
            else ""
        )
    )

    # 3. dashboard vs naive (user and sessions rolled back)
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_superuser("bench_reporting", password=None)
            client = verified_client(user)
            assert client.get("/reports/").status_code == 200  # warm imports and templates
            timed = {}
            for how, seconds in (("", 0), (", figures cache", 3600)):
                with override_settings(REPORTING_CACHE_SECONDS=seconds):
                    if seconds:
                        warm_started = time.perf_counter()
                        warmed = warming.warm()
                        took = time.perf_counter() - warm_started
                        print(
                            f"figures cache warmed ({warmed} entries: the national and every "
                            f"province page, 2 languages): {took:.1f} s"
                        )
                    timed[how] = (
                        percentiles(lambda: client.get("/reports/"), args.repeat),
                        percentiles(lambda: client.get("/reports/?province=32"), args.repeat),
                        percentiles(lambda: client.get("/api/v1/reports/progress/"), args.repeat),
                    )
            raise Rollback
    except Rollback:
        pass

    def naive() -> None:
        with connection.cursor() as c:
            for sql in NAIVE:
                c.execute(sql, [year_start] if "%s" in sql else None)
                c.fetchall()

    naive_t = percentiles(naive, max(3, args.repeat // 3))
    timings = [("naive GROUP BYs (3 queries)", naive_t)]
    for how, (page, page_prov, api) in timed.items():
        timings += [
            (f"dashboard page /reports/{how}", page),
            (f"page, one province{how}", page_prov),
            (f"progress API{how}", api),
        ]
    for label, (p50, p95) in timings:
        print(f"{label}: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    for how, (page, _p, _a) in timed.items():
        print(f"page{how} p50 = {page[0] / naive_t[0] * 100:.2f} % of the naive queries' p50")


if __name__ == "__main__":
    main()
