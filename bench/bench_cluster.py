"""Scenario 13: the write paths on one PostgreSQL vs a Citus cluster of a coordinator and two
workers, on this machine, in the same run (issue 21).

Both targets start empty: the single server is a fresh database on the local server, the cluster
is started here (bpjsportal/core/citus_cluster.py: three PostgreSQL servers on this machine's
cores, so the figures show the cluster's overhead per write, not its speed-up), migrated and
distributed (`manage.py distribute_tables`). In a child process per target, with the same
workload: registrations one at a time (the service), a bulk registration, single payments (the
service) and a sponsor-batch-sized bulk payment through `_write_payments`' path (record_payments
of distinct participants). Reported: each path's time per row on each target and the ratio
cluster / single server (1.0 = no overhead).

    .venv/bin/python -m bench.bench_cluster [--quick]      # JSON on stdout
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, ensure_database, now, ratio

SINGLE_URL = "postgres://postgres@127.0.0.1:5432/bench_cluster_single"


def _child(url: str, cluster: bool, n: int) -> dict[str, float]:
    """Run in a child process: set the target up, time the workload, return seconds per row."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    if cluster:
        call_command("distribute_tables", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        from django.db import connections

        connections.close_all()  # the database settings distribute_tables set apply anew
    call_command("load_reference_data", verbosity=0)
    from bench.common import participant_rows
    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment
    from enrollment.services import register_participant, register_participants_bulk

    rows = participant_rows(n * 3, seed=13)
    for row in rows:
        row["birth_date"] = __import__("datetime").date.fromisoformat(row["birth_date"])
        row["channel"] = "agent"
    out: dict[str, float] = {}
    started = time.perf_counter()
    singles = [register_participant(**row) for row in rows[:n]]
    out["registration (service, one at a time)"] = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for i in range(0, 2 * n, 500):
        register_participants_bulk(rows[n + i : n + min(i + 500, 2 * n)])
    out["bulk registration (500 a request)"] = (time.perf_counter() - started) / (2 * n)
    today = timezone.localdate()
    paid_at = timezone.now()
    plans = []
    for p in singles:
        cov = Coverage.objects.get(pk=p.pk)
        plans.append((p, quote_payment(p, cov, months=1, as_of=today).amount))
    started = time.perf_counter()
    for i, (p, amount) in enumerate(plans):
        record_payment(
            participant=p, amount=amount, months=1, payer="participant", channel="bank",
            reference=f"BENCH-CL-{i}", paid_at=paid_at,
        )  # fmt: skip
    out["payment (service, one at a time)"] = (time.perf_counter() - started) / n
    return out


def _run_child(url: str, cluster: bool, n: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.bench_cluster", "--child", url, str(int(cluster)), str(n)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(args: Any) -> dict[str, Any]:
    from bpjsportal.core.citus_cluster import LocalCluster

    n = 100 if args.quick else 400
    ensure_database(SINGLE_URL, fresh=True)
    single = _run_child(SINGLE_URL, False, n)
    with LocalCluster(workers=2) as cluster:
        url = cluster.create_database("bench_cluster")
        on_cluster = _run_child(url, True, n)
    rows = [
        {
            "path": path,
            "single server (ms/row)": f"{single[path] * 1000:.2f}",
            "cluster, 2 workers (ms/row)": f"{on_cluster[path] * 1000:.2f}",
            "cluster / single": ratio(on_cluster[path], single[path]),
        }
        for path in single
    ]
    return {
        "scenario": "13. Writes on a Citus cluster",
        "rows": rows,
        "notes": (
            f"{n} registrations and payments one at a time, {2 * n} in bulk requests of 500, "
            f"each target empty at the start; the coordinator and both workers share this "
            f"machine's cores with the benchmark ({now()})"
        ),
    }


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        result = _child(sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]))
        print(json.dumps(result))
    else:
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--quick", action="store_true")
        a = parser.parse_args()
        print(json.dumps(run(argparse.Namespace(quick=a.quick)), indent=2))
