"""Scenario 3: the registration API under concurrency, vs a bare Django view doing the same INSERT.

For each client count (default 8, 16, 32), `--requests` POST /api/v1/participants/ (partner
token; validation, duplicate check, KPJ, coverage hook, serializer) and as many POSTs to the bare
view of bench/bare_urls.py (JSON in, KPJ nextval, the same INSERT, no auth or validation), from
that many threads at once, against one gunicorn serving both (bench/bench_settings.py, the
benchmark-only URLconf). Requests/s, p50/p99; the ratio API/bare is the framework's cost.

    .venv/bin/python -m bench.bench_concurrency --clients 8,16,32 --requests 600

Its own database `replica_bench_concurrency`, dropped and recreated each run (only
registrations are written).
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from bench.common import ensure_database, machine, now, participant_rows
from bench.harness import (
    client,
    gunicorn,
    load,
    partner_token,
    prepare_django,
    print_result,
    run_clients,
    summary,
    with_defaults,
)

DB = "replica_bench_concurrency"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", default="8,16,32", help="comma-separated client counts")
    p.add_argument("--requests", type=int, default=600, help="requests per client count and side")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    p.add_argument("--seed", type=int, default=31)
    p.add_argument("--quick", action="store_true", help="smoke run: 100 requests per level")
    return p


def _levels(value: Any) -> list[int]:
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    return [int(v) for v in str(value).split(",") if v.strip()]


def _measure(
    base: str, token: str | None, path: str, rows: list[dict[str, Any]], n_clients: int, ok: int
) -> dict[str, Any]:
    lock = threading.Lock()
    queue = list(rows)
    failures: list[str] = []

    def work(_i: int) -> list[float]:
        out: list[float] = []
        with client(base, token) as http:
            while True:
                with lock:
                    if not queue:
                        return out
                    row = queue.pop()
                t = time.perf_counter()
                response = http.post(path, json=row)
                out.append(time.perf_counter() - t)
                if response.status_code != ok:
                    with lock:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    latencies, wall, errors = run_clients(n_clients, work)
    return {
        "rps": len(latencies) / wall,
        **summary(latencies),
        "errors": len(failures) + len(errors),
        "first_error": (failures or [repr(e) for e in errors] or [""])[0],
    }


def run(args: Any = None) -> dict[str, Any]:
    args = with_defaults(parser(), args)
    load_before = load()
    if args.quick:
        args.requests = min(args.requests, 100)
    levels = _levels(args.clients)
    url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    ensure_database(url, fresh=True)
    prepare_django(url)
    token = partner_token("bench-concurrency", "BENCHC")
    total = 2 * args.requests * len(levels) + 64
    rows = participant_rows(total, seed=args.seed)
    result_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with gunicorn(url, workers=args.workers, settings="bench.bench_settings") as base:
        # Warm-up: every worker opens its database connection and imports its views.
        warm = rows[:64]
        rows = rows[64:]
        _measure(base, token, "/api/v1/participants/", warm[:32], args.workers * 2, 201)
        _measure(base, None, "/bench/bare/register/", warm[32:], args.workers * 2, 201)
        for n_clients in levels:
            api_rows, rows = rows[: args.requests], rows[args.requests :]
            bare_rows, rows = rows[: args.requests], rows[args.requests :]
            api = _measure(base, token, "/api/v1/participants/", api_rows, n_clients, 201)
            bare = _measure(base, None, "/bench/bare/register/", bare_rows, n_clients, 201)
            result_rows.append(
                {
                    "clients": n_clients,
                    "requests": f"{args.requests:,} + {args.requests:,}",
                    "API req/s": f"{api['rps']:,.1f}",
                    "API p50 / p99": f"{api['p50_ms']:,.0f} / {api['p99_ms']:,.0f} ms",
                    "bare view req/s (baseline)": f"{bare['rps']:,.1f}",
                    "bare p50 / p99": f"{bare['p50_ms']:,.0f} / {bare['p99_ms']:,.0f} ms",
                    "ratio": f"{api['rps'] / bare['rps']:.3f}",
                    "errors": str(api["errors"] + bare["errors"]),
                }
            )
            for side, m in (("API", api), ("bare", bare)):
                if m["errors"]:
                    notes.append(f"{side} at {n_clients} clients: {m['first_error']}")
    from enrollment.models import Participant

    expected = 64 + 2 * args.requests * len(levels)
    stored = Participant.objects.count()
    if stored != expected:
        notes.append(f"LOST ROWS: expected {expected:,} participants, found {stored:,}")
    return {
        "scenario": "3. Registration API under concurrency vs a bare INSERT view",
        "rows": result_rows,
        "notes": (
            f"{now()}; {machine()}; load average {load_before} -> {load()}. "
            f"Ratio = API req/s / bare req/s. gunicorn {args.workers} "
            "sync workers (DEBUG off), clients are "
            "threads with one httpx client each, all on this machine; the API and the bare view "
            "are served by the same gunicorn (benchmark URLconf bench/bare_urls.py) and write "
            "the same table. Bare = JSON in, KPJ nextval, the same INSERT, no authentication, "
            f"validation, duplicate check, hooks or serializer. Rows stored: {stored:,} of "
            f"{expected:,} sent." + (" " + " ".join(notes) if notes else "")
        ),
    }


def main() -> None:
    print_result(run(parser().parse_args()))


if __name__ == "__main__":
    main()
