"""The REST API under load, through the real HTTP stack (gunicorn), against the same PostgreSQL.

1. Bulk upsert throughput: N new participants posted to /api/v1/participants/bulk/ in 1,000-row
   requests (several clients at once), against a baseline of psql COPY of the same rows into a
   copy of enrollment_participant (same indexes and checks) in the same run.
2. Single-request latency p50/p99 of POST /api/v1/participants/ and POST /api/v1/payments/ under
   concurrent clients.

    .venv/bin/python -m bench.bench_api --n 20000 --workers 4 --clients 8 --single 400

The database `bpjsportal_api_bench` is dropped and recreated each run (fresh, same every time).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import ensure_database, machine, now, participant_rows, percentile
from bench.harness import call, gunicorn

DB = os.environ.get("BENCH_API_DB", "bpjsportal_api_bench")  # own name when runs overlap
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB}"


def _copy_baseline(rows: list[dict[str, Any]]) -> float:
    """psql \\copy of the same rows into a copy of the participant table (indexes, checks)."""
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(
        [
            *psql,
            "-c",
            "DROP TABLE IF EXISTS bench_copy_participant; CREATE TABLE bench_copy_participant "
            "(LIKE enrollment_participant INCLUDING ALL)",
        ],
        check=True,
    )
    cols = (
        "nik_digest,nik_encrypted,kpj_number,full_name,birth_date,sex,phone,email,language,village_id,province_id,"
        "regency_id,address,occupation_id,declared_income,jht,channel,consent_data,"
        "consent_reminders,created_at,updated_at,sync_txid"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)  # "" is an empty string, not NULL
        stamp = "2026-01-01 00:00:00+07"
        from enrollment.pii import nik_columns

        for i, r in enumerate(rows):
            digest, token = nik_columns(r["nik"])  # what the table stores: HMAC + ciphertext
            w.writerow(
                [
                    "\\x" + digest.hex(),
                    token,
                    f"{90000000000 + i}",
                    r["full_name"],
                    r["birth_date"],
                    r["sex"],
                    "+62" + r["phone"][1:],
                    "",
                    "id",
                    r["village"],
                    "32",
                    "32.73",
                    r["address"],
                    r["occupation"],
                    r["declared_income"],
                    "f",
                    "partner",
                    "t",
                    "f",
                    stamp,
                    stamp,
                    0,
                ]
            )
        path = f.name
    start = time.perf_counter()
    subprocess.run(
        [*psql, "-c", f"\\copy bench_copy_participant ({cols}) FROM '{path}' WITH (FORMAT csv)"],
        check=True,
    )
    elapsed = time.perf_counter() - start
    os.unlink(path)
    return elapsed


class _Rollback(Exception):
    pass


def _backend_cpu_seconds() -> float:
    """CPU time used so far by this connection's PostgreSQL backend (same host: /proc)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        (pid,) = cur.fetchone()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_cost(fn: Any) -> float:
    """CPU seconds (this process + its database backend) of fn(), rolled back afterwards.
    Unlike wall time, this hardly moves when other work shares the machine."""
    from django.db import transaction

    try:
        with transaction.atomic():
            b0, c0 = _backend_cpu_seconds(), time.process_time()
            fn()
            spent = time.process_time() - c0 + _backend_cpu_seconds() - b0
            raise _Rollback
    except _Rollback:
        pass
    return spent


def _cpu_comparison(rows: list[dict[str, Any]], client: Any) -> dict[str, float]:
    """In-process CPU cost of one 1,000-row request's work: the batched bulk upsert, the same
    rows one at a time through the single-row services (the endpoint before batching), and a
    COPY of the same stored rows (digest and ciphertext computed beforehand) — same run."""
    from django.db import connection

    from enrollment.api.bulk import bulk_upsert, upsert_row
    from enrollment.models import Participant, niks_q
    from enrollment.pii import nik_columns

    def one_by_one() -> None:
        found = Participant.objects.select_for_update().filter(niks_q([r["nik"] for r in rows]))
        existing = {p.nik: p for p in found}
        for n, raw in enumerate(rows):
            upsert_row(client, n, raw, existing)

    stamp = "2026-01-01 00:00:00+07"
    stored = [
        (*nik_columns(r["nik"]), f"{90000000000 + i}", r["full_name"], r["birth_date"], r["sex"],
         "+62" + r["phone"][1:], "", "id", r["village"], "32", "32.73", r["address"],
         r["occupation"], r["declared_income"], False, "partner", True, False, stamp, stamp, 0)
        for i, r in enumerate(rows)
    ]  # fmt: skip
    cols = (
        "nik_digest,nik_encrypted,kpj_number,full_name,birth_date,sex,phone,email,language,"
        "village_id,province_id,regency_id,address,occupation_id,declared_income,jht,channel,"
        "consent_data,consent_reminders,created_at,updated_at,sync_txid"
    )

    def copy() -> None:
        with connection.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE bench_cpu_copy (LIKE enrollment_participant INCLUDING ALL)"
                " ON COMMIT DROP"
            )
            with cur.cursor.copy(f"COPY bench_cpu_copy ({cols}) FROM STDIN") as cp:
                for row in stored:
                    cp.write_row(row)

    return {
        "batched": _cpu_cost(lambda: bulk_upsert(client, rows)),
        "one_by_one": _cpu_cost(one_by_one),
        "copy": _cpu_cost(copy),
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of latencies in seconds."""
    return statistics.median(samples) * 1000, percentile(samples, 99) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--senders", type=int, default=4, help="concurrent bulk clients")
    parser.add_argument("--clients", type=int, default=8, help="concurrent single clients")
    parser.add_argument("--single", type=int, default=400, help="requests per latency test")
    args = parser.parse_args()

    ensure_database(DB_URL, fresh=True)
    os.environ["BENCH_DATABASE_URL"] = DB_URL
    from bench.common import setup_django

    setup_django(DB)
    from enrollment.api.clients import create_api_client
    from enrollment.models import Partner

    partner = Partner.objects.create(code="BENCH", name="Bench partner", kind="bundle")
    token = create_api_client(name="bench", scope="partner", partner=partner).token
    channel_token = create_api_client(name="bank", scope="channel", payment_channel="bank").token

    with gunicorn(DB_URL, workers=args.workers) as base:
        rows = participant_rows(args.n + args.single, seed=11)
        bulk_rows, single_rows = rows[: args.n], rows[args.n :]
        chunks = [bulk_rows[i : i + args.batch] for i in range(0, len(bulk_rows), args.batch)]

        def send(chunk: list[dict[str, Any]]) -> dict[str, int]:
            status, body = call(
                base,
                token,
                "POST",
                "/api/v1/participants/bulk/",
                {"rows": chunk},
                Idempotency_Key=str(uuid.uuid4()),
            )
            assert status == 200, (status, body)
            return dict(body["summary"])

        start = time.perf_counter()
        with ThreadPoolExecutor(args.senders) as pool:
            summaries = list(pool.map(send, chunks))
        bulk_s = time.perf_counter() - start
        created = sum(s["created"] for s in summaries)
        assert created == args.n, summaries[:3]
        copy_s = _copy_baseline(bulk_rows)

        lock = threading.Lock()
        queue = list(single_rows)

        def register_one() -> float:
            with lock:
                row = queue.pop()
            t = time.perf_counter()
            status, body = call(base, token, "POST", "/api/v1/participants/", row)
            assert status == 201, (status, body)
            return time.perf_counter() - t

        with ThreadPoolExecutor(args.clients) as pool:
            reg_lat = list(pool.map(lambda _i: register_one(), range(args.single)))

        _s, quote = call(base, token, "GET", "/api/v1/quotes/?income=1000000&occupation=petani")
        amount = quote["total"]
        from enrollment.models import Participant

        kpjs = list(Participant.objects.values_list("kpj_number", flat=True)[: args.single])
        paid_at = time.strftime("%Y-%m-%dT%H:%M:%S+07:00")

        def pay_one(kpj: str) -> float:
            body = {
                "kpj_number": kpj,
                "amount": amount,
                "months": 1,
                "reference": f"B-{kpj}",
                "paid_at": paid_at,
                "payer": "participant",
            }
            t = time.perf_counter()
            status, out = call(base, channel_token, "POST", "/api/v1/payments/", body)
            assert status == 201, (status, out)
            return time.perf_counter() - t

        with ThreadPoolExecutor(args.clients) as pool:
            pay_lat = list(pool.map(pay_one, kpjs))
    from enrollment.models import ApiClient

    cpu_rows = participant_rows(args.batch, seed=12)  # NIKs not registered yet (another seed)
    cpu = _cpu_comparison(cpu_rows, ApiClient.objects.get(name="bench"))

    bulk_rate, copy_rate = args.n / bulk_s, args.n / copy_s
    reg50, reg99 = _percentiles(reg_lat)
    pay50, pay99 = _percentiles(pay_lat)
    print(f"## API benchmark ({now()}; {machine()})")
    print(f"gunicorn {args.workers} sync workers, DEBUG off, same PostgreSQL for both sides.\n")
    print("| measure | result |\n|---|---|")
    print(
        f"| bulk upsert, {args.n:,} new rows in {args.batch}-row requests, {args.senders} "
        f"clients | {bulk_rate:,.0f} rows/s ({bulk_s:.1f} s) |"
    )
    print(f"| psql COPY of the same rows (baseline) | {copy_rate:,.0f} rows/s ({copy_s:.2f} s) |")
    print(f"| bulk / COPY | {100 * bulk_rate / copy_rate:.1f} % |")
    print(
        f"| POST /participants/, {args.single} requests, {args.clients} clients | "
        f"p50 {reg50:.0f} ms, p99 {reg99:.0f} ms |"
    )
    print(
        f"| POST /payments/, {len(kpjs)} requests, {args.clients} clients | "
        f"p50 {pay50:.0f} ms, p99 {pay99:.0f} ms |"
    )
    print(f"\nCPU seconds (app + database backend) per {args.batch}-row request, in process:\n")
    print("| path | CPU s | COPY / path |\n|---|---|---|")
    for name, label in (
        ("batched", "bulk upsert, batched (register_participants_bulk)"),
        ("one_by_one", "the same rows one by one (single-row services, the old path)"),
        ("copy", "COPY of the same stored rows (baseline)"),
    ):
        print(f"| {label} | {cpu[name]:.3f} | {100 * cpu['copy'] / cpu[name]:.1f} % |")


if __name__ == "__main__":
    main()
