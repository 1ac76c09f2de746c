"""Scenario 4 (dashboard part) on the generated data set: p50/p95 of each dashboard request
(page, a province page, progress API, exports) vs the naive GROUP BYs over the raw tables, in
the same run. The rollup build and the refresh after N payments are measured by
bench/bench_reporting.py (reporting's own benchmark); the naive queries are imported from it
when it defines them.

    .venv/bin/python -m bench --size 10m --existing --only 4

Requests go through Django's test client in this process (the full view, template and
serialisation; no HTTP) as a superuser, each twice: with the figures computed from the rollups
on every request (`REPORTING_CACHE_SECONDS=0`) and with the figures cache (reporting/cache.py).
If no rollup day is built yet, the year is built first with `reporting.rollups.rebuild_rollups`
(its time is reported, not part of the ratios).
Writes: the rollup tables (if built here), one benchmark user and its session.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bench.common import ms, percentile, run_alone, use_database, verified_client

# The naive way to draw the dashboard: GROUP BYs over participants, coverage and the ledger.
NAIVE_LOCAL = [
    """SELECT pa.province_id, cv.status, count(*) FROM enrollment_participant pa
       JOIN contributions_coverage cv ON cv.participant_id = pa.id GROUP BY 1, 2""",
    """SELECT pa.occupation_id, pa.channel, count(*) FILTER (WHERE cv.status = 'active')
       FROM enrollment_participant pa JOIN contributions_coverage cv ON cv.participant_id = pa.id
       GROUP BY 1, 2""",
    """SELECT pa.province_id, sum(e.amount) FROM contributions_ledgerentry e
       JOIN enrollment_participant pa ON pa.id = e.participant_id
       WHERE e.created_at >= %s GROUP BY 1""",
]
REQUESTS = [
    ("dashboard page /reports/", "/reports/"),
    ("dashboard page, one province", "/reports/?province=32"),
    ("progress API", "/api/v1/reports/progress/"),
    ("export headline.csv", "/reports/export/headline.csv"),
    ("export province.csv", "/reports/export/province.csv"),
    ("export occupation.xlsx", "/reports/export/occupation.xlsx"),
    ("export league.csv", "/reports/export/league.csv"),
]


def naive_queries() -> list[str]:
    try:
        from bench.bench_reporting import NAIVE  # reporting's benchmark, when it defines them

        return list(NAIVE)
    except ImportError:
        return NAIVE_LOCAL


def samples(fn: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url, migrate=True)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import override_settings
    from django.utils import timezone

    from reporting.models import RollupDay
    from reporting.rollups import rebuild_rollups

    quick = args.quick or args.size == "10k"
    repeat = 5 if quick else 15
    naive_repeat = 5 if args.size != "10m" else 3
    today = timezone.localdate()
    year_start = date(today.year, 1, 1)
    rows: list[dict[str, Any]] = []
    notes = []
    latest = RollupDay.objects.order_by("-day").values_list("day", flat=True).first()
    event_build = importlib.util.find_spec("reporting.rollups.build") is not None
    if (latest is None or latest < today - timedelta(days=1)) and not (
        event_build or args.size != "10m"
    ):
        # the per-day build scans the ledger once per day: hours at 10 M participants
        return {
            "scenario": "4. Dashboard",
            "rows": [],
            "notes": "skipped: no recent rollup day in the data set and only the per-day rollup "
            "build is available (hours at this size); build the rollups first.",
        }
    if latest is None or latest < today - timedelta(days=1):
        built = rebuild_rollups(start=year_start, end=today)
        notes.append(
            f"No recent rollup day: built {built.days} days ({built.rows:,} rows) first in "
            f"{built.seconds:.1f} s with reporting.rollups.rebuild_rollups."
        )
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    else:
        notes.append(f"Rollups as found in the data set (latest built day {latest}).")

    user, _c = get_user_model().objects.get_or_create(
        username="bench-dashboard", defaults={"is_staff": True, "is_superuser": True}
    )
    client = verified_client(user)
    for _label, path in REQUESTS:  # warm: first request per path (caches, imports)
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} -> {response.status_code}")

    naive = naive_queries()

    def run_naive(sql: str) -> Callable[[], object]:
        def go() -> object:
            with connection.cursor() as cur:
                cur.execute(sql, [year_start] if "%s" in sql else None)
                return cur.fetchall()

        return go

    naive_runs = [samples(run_naive(sql), naive_repeat) for sql in naive]
    naive_total = [sum(r[i] for r in naive_runs) for i in range(naive_repeat)]
    n50, n95 = statistics.median(naive_total), percentile(naive_total, 95)
    for label, path in REQUESTS:
        # The figures from the rollups on every request (the first reader after a build or a
        # refresh, before the warm-up task), then from the figures cache (reporting/cache.py).
        for how, seconds in (("rollups, no cache", 0), ("figures cache", 3600)):
            with override_settings(REPORTING_CACHE_SECONDS=seconds):
                client.get(path)  # the cached variant's entry is written here
                runs = samples(lambda p=path: client.get(p), repeat)  # type: ignore[misc]
            p50, p95 = statistics.median(runs), percentile(runs, 95)
            rows.append({
                "request": f"{label} ({how})", "p50": ms(p50), "p95": ms(p95),
                "naive GROUP BYs p95 (baseline)": ms(n95), "p95 ratio": f"{p95 / n95:.4f}",
            })  # fmt: skip
    for i, (sql, runs) in enumerate(zip(naive, naive_runs, strict=True), 1):
        first = " ".join(sql.split())[:70]
        rows.append({
            "request": f"naive query {i}: `{first}…`", "p50": ms(statistics.median(runs)),
            "p95": ms(percentile(runs, 95)), "naive GROUP BYs p95 (baseline)": "",
            "p95 ratio": "",
        })  # fmt: skip
    notes.append(
        f"p50/p95 of {repeat} requests each (Django test client, superuser, whole country); "
        f"baseline = the {len(naive)} naive GROUP BYs run back to back, {naive_repeat} times "
        f"(p50 {ms(n50)}). Ambition: p95 <= 1 % of the naive queries and under 100 ms."
    )
    return {"scenario": "4. Dashboard", "rows": rows, "notes": " ".join(notes)}


if __name__ == "__main__":
    run_alone(run)
