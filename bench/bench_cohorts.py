"""Scenario 12 on the generated data set: the cohort retention section (reporting.cohorts) -
p50/p95 of the dashboard page that carries it, a cut by channel, a province with a payer type,
the cohort export and the cohort figures alone, each with the figures computed from the cohort
rollups on every request and with the figures cache - against the naive query (the same
figures straight from participants, coverage and the ledger) in the same run; and the time of
the cohort rollup build (`reporting.rollups.rebuild_cohorts`, forced).

    .venv/bin/python -m bench --size 10k --existing --only 12

Requests go through Django's test client in this process as a superuser (the full view,
template and serialisation; no HTTP). Writes: the cohort rollup tables, one benchmark user and
its session.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import ms, percentile, run_alone, use_database, verified_client

REQUESTS = [
    ("dashboard page with the cohort section", "/reports/"),
    ("cohorts cut by channel", "/reports/?channel=agent"),
    ("a province and a payer type", "/reports/?province=32&payer=apbd"),
    ("export cohorts.csv", "/reports/export/cohorts.csv"),
    ("export retention_flows.xlsx", "/reports/export/retention_flows.xlsx"),
]


def naive_sql() -> str:
    """The national cohort table straight from the raw tables: for every participant of the
    last 24 cohorts and every complete membership month m, whether some payment entry paid by
    the end of m and not reversed by then covers m or later (= paid through >= m: active at the
    end of m, contributions.coverage.status_at_month_end)."""
    from contributions import rules_sql
    from contributions.rules_sql import T

    return f"""
WITH pm AS (
    SELECT c.participant_id AS pid, c.start_month AS sm, g.k,
           (c.start_month + make_interval(months => g.k - 1))::date AS m
    FROM {T.coverage} c CROSS JOIN generate_series(1, 24) g(k)
    WHERE c.start_month BETWEEN %(c0)s AND %(wn)s
      AND (c.start_month + make_interval(months => g.k - 1))::date <= %(wn)s
)
SELECT sm, k, count(*) AS participants,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM {T.ledger} e JOIN {T.payment} p ON p.id = e.payment_id
           WHERE e.participant_id = pm.pid AND e.kind = 'payment'
             AND (p.paid_at AT TIME ZONE %(tz)s)::date < (pm.m + interval '1 month')::date
             AND {rules_sql.next_unpaid_after("e")} > pm.m
             AND NOT EXISTS (
                 SELECT 1 FROM {T.ledger} r WHERE r.reverses_id = e.id
                   AND (r.created_at AT TIME ZONE %(tz)s)::date
                       < (pm.m + interval '1 month')::date))) AS active
FROM pm GROUP BY sm, k ORDER BY sm, k
"""


def samples(fn: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings
    from django.utils import timezone

    from reporting import cohorts
    from reporting.models import CohortRollup, RetentionFlowRollup
    from reporting.rollups import rebuild_cohorts
    from reporting.rollups.cohorts import cohort_params

    if "reporting_cohortrollup" not in connection.introspection.table_names():
        # a data set migrated while 0005_cohorts was still an empty placeholder records it as
        # applied without its tables: run it again
        call_command("migrate", "reporting", "0004_figuresversion", fake=True, verbosity=0)
    call_command("migrate", "reporting", verbosity=0)  # this scenario's tables only
    quick = args.quick or args.size == "10k"
    repeat = 5 if quick else 15
    naive_repeat = 3 if args.size == "10m" else 5
    notes = []

    started = time.perf_counter()
    built = rebuild_cohorts(force=True)
    build_seconds = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("ANALYZE reporting_cohortrollup")
        cur.execute("ANALYZE reporting_retentionflowrollup")
    rows: list[dict[str, Any]] = [
        {
            "request": f"cohort rollup build to {built.last_month:%Y-%m} (forced)",
            "p50": ms(build_seconds),
            "p95": "",
            "naive query p95 (baseline)": "",
            "p95 ratio": "",
        }
    ]
    notes.append(
        f"Build: {CohortRollup.objects.count():,} cohort rows and "
        f"{RetentionFlowRollup.objects.count():,} flow rows."
    )

    params = cohort_params(timezone.localdate())

    def naive() -> object:
        with connection.cursor() as cur:
            cur.execute(naive_sql(), params)
            return cur.fetchall()

    naive_runs = samples(naive, naive_repeat)
    n95 = percentile(naive_runs, 95)

    user, _c = get_user_model().objects.get_or_create(
        username="bench-cohorts", defaults={"is_staff": True, "is_superuser": True}
    )
    client = verified_client(user)
    for _label, path in REQUESTS:  # warm: first request per path (imports, templates)
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} -> {response.status_code}")

    def figures() -> object:
        return cohorts.cohort_figures(cohorts.CohortFilters())

    measured: list[tuple[str, Callable[[], object]]] = [
        (label, lambda p=path: client.get(p))  # type: ignore[misc]
        for label, path in REQUESTS
    ]
    measured.append(("cohort figures alone (reporting.cohorts.cohort_figures)", figures))
    for label, fn in measured:
        for how, seconds in (("rollups, no cache", 0), ("figures cache", 3600)):
            with override_settings(REPORTING_CACHE_SECONDS=seconds):
                fn()  # the cached variant's entry is written here
                runs = samples(fn, repeat)
            p50, p95 = statistics.median(runs), percentile(runs, 95)
            rows.append({
                "request": f"{label} ({how})", "p50": ms(p50), "p95": ms(p95),
                "naive query p95 (baseline)": ms(n95), "p95 ratio": f"{p95 / n95:.4f}",
            })  # fmt: skip
    rows.append({
        "request": "naive query: the national cohort table from participants and the ledger",
        "p50": ms(statistics.median(naive_runs)), "p95": ms(n95),
        "naive query p95 (baseline)": "", "p95 ratio": "",
    })  # fmt: skip
    notes.append(
        f"p50/p95 of {repeat} requests each (Django test client, superuser); the dashboard "
        f"page carries every other dashboard figure too. Baseline: the naive query, "
        f"{naive_repeat} runs. Budget: p95 under 100 ms with the figures cache."
    )
    return {"scenario": "12. Cohort retention", "rows": rows, "notes": " ".join(notes)}


if __name__ == "__main__":
    run_alone(run)
