"""Scenario 6: incremental sync, a client catching up N changed rows through the API.

The client holds a sync token N rows behind the newest change (the token the API would have
given it after the (count - N)-th row: bpjsportal/core/api/sync.py orders by (sync_txid, id)) and
loops GET /api/v1/sync/participants/?since=...&page_size=1000 until has_more is false, as
docs/api.md tells clients to. Baseline in the same run: `COPY (SELECT ...) TO STDOUT` of the
same rows and columns (participant, partner code, coverage status and paid-through month), in the
same order, read by psycopg. Reports rows/s of both, the ratio, and page latency p50/p99.

    .venv/bin/python -m bench.bench_sync --rows 100000          # a database of its own
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench10m \\
        .venv/bin/python -m bench.bench_sync --rows 1000000

Writes nothing to an existing database except one API client (and, when the database has fewer
participants than --rows, the missing synthetic participants: additive only). Its own database
is `replica_bench_sync` (kept between runs).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import machine, now, participant_rows
from bench.harness import (
    admin_token,
    client,
    database_url,
    gunicorn,
    load,
    prepare_django,
    print_result,
    summary,
    with_defaults,
)

DB = "replica_bench_sync"
COLUMNS = """p.id, p.nik_encrypted, p.kpj_number, p.full_name, p.birth_date, p.sex, p.phone,
    p.email, p.village_id, p.address, p.occupation_id, p.declared_income, p.jht, p.channel, pa.code,
    p.consent_data, p.consent_reminders, c.status, c.paid_through, p.created_at, p.updated_at"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="changed rows to catch up")
    p.add_argument("--page-size", type=int, default=1000, help="1-1000 (the API's maximum)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    p.add_argument("--seed", type=int, default=61)
    p.add_argument(
        "--database-url",
        help="an existing data set (bench/run.py passes it); default BENCH_DATABASE_URL or a "
        "database of our own, topped up to --rows participants",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: at most 20,000 rows")
    return p


def _fill(missing: int, seed: int) -> None:
    """Add `missing` synthetic participants (COPY into a staging table, then INSERT ... ON
    CONFLICT DO NOTHING: additive, never touches existing rows)."""
    from django.db import connection

    rows = participant_rows(missing, seed=seed)
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM enrollment_participant")
        base = cur.fetchone()[0] + 1
        cur.execute(
            "CREATE TEMP TABLE bench_sync_fill (nik text, kpj text, full_name text, birth date,"
            " sex text, phone text, village text, address text, occupation text, income bigint)"
        )
        with cur.copy("COPY bench_sync_fill FROM STDIN") as copy:
            for i, r in enumerate(rows):
                copy.write_row(
                    [r["nik"], f"8{base + i:010d}", r["full_name"], r["birth_date"], r["sex"],
                     "+62" + r["phone"][1:], r["village"], r["address"], r["occupation"],
                     r["declared_income"]]
                )  # fmt: skip
        cur.execute(
            """INSERT INTO enrollment_participant (nik, kpj_number, full_name, birth_date, sex,
                phone, email, language, village_id, province_id, regency_id, address,
                occupation_id, declared_income, jht, channel, consent_data, consent_reminders,
                created_at, updated_at, sync_txid)
            SELECT nik, kpj, full_name, birth, sex, phone, '', 'id', village,
                split_part(village, '.', 1), split_part(village, '.', 1) || '.' ||
                split_part(village, '.', 2), address, occupation, income, false, 'partner',
                true, false, now(), now(), 0 FROM bench_sync_fill
            ON CONFLICT DO NOTHING"""
        )
        cur.execute("DROP TABLE bench_sync_fill")


def _start_position(rows: int) -> tuple[int, int, int]:
    """(txid, id) of the row just before the last `rows` changes below the horizon, and how
    many rows lie after it."""
    from django.db import connection

    from bpjsportal.core.api.sync import sync_horizon

    horizon = sync_horizon()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT sync_txid, id FROM enrollment_participant WHERE sync_txid < %s "
            "ORDER BY sync_txid DESC, id DESC OFFSET %s LIMIT 1",
            [horizon, rows],
        )
        found = cur.fetchone()
        txid, pk = found if found else (0, 0)
        cur.execute(
            "SELECT count(*) FROM enrollment_participant WHERE (sync_txid, id) > (%s, %s) "
            "AND sync_txid < %s",
            [txid, pk, horizon],
        )
        return txid, pk, cur.fetchone()[0]


def _copy_baseline(url: str, txid: int, pk: int) -> tuple[int, float, int]:
    """COPY of the same rows and columns, same order; (rows, seconds, bytes)."""
    import psycopg

    sql = (
        f"COPY (SELECT {COLUMNS} FROM enrollment_participant p "
        "LEFT JOIN enrollment_partner pa ON pa.id = p.partner_id "
        "LEFT JOIN contributions_coverage c ON c.participant_id = p.id "
        f"WHERE (p.sync_txid, p.id) > ({int(txid)}, {int(pk)}) "
        "ORDER BY p.sync_txid, p.id) TO STDOUT"
    )
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        start = time.perf_counter()
        n_bytes = n_rows = 0
        with conn.cursor() as cur, cur.copy(sql) as copy:
            for block in copy:
                n_bytes += len(block)
                n_rows += bytes(block).count(b"\n")
        return n_rows, time.perf_counter() - start, n_bytes


def run(args: Any = None) -> dict[str, Any]:
    args = with_defaults(parser(), args)
    load_before = load()
    if args.quick:
        args.rows = min(args.rows, 20_000)
    url = args.database_url or database_url(DB)
    own = url.rsplit("/", 1)[-1] == DB
    prepare_django(url)
    from bpjsportal.core.api.sync import Position, encode_token
    from enrollment.models import Participant

    have = Participant.objects.count()
    filled = 0
    if have < args.rows + 1:
        if own:  # our own database: top it up (a shared data set is only read)
            filled = args.rows + 1 - have
            _fill(filled, args.seed)
        else:
            args.rows = max(0, have - 1)
    token = admin_token("bench-sync")
    txid, pk, expected = _start_position(args.rows)
    since = encode_token("participants", Position(txid, pk))

    copy_rows, copy_s, copy_bytes = _copy_baseline(url, txid, pk)
    with gunicorn(url, workers=args.workers) as base, client(base, token) as http:
        http.get("/api/v1/sync/participants/", params={"page_size": 1})  # warm-up
        latencies: list[float] = []
        got = pages = 0
        start = time.perf_counter()
        while True:
            t = time.perf_counter()
            response = http.get(
                "/api/v1/sync/participants/",
                params={"since": since, "page_size": args.page_size},
            )
            latencies.append(time.perf_counter() - t)
            response.raise_for_status()
            body = response.json()
            got += len(body["results"])
            pages += 1
            since = body["next_token"]
            if not body["has_more"]:
                break
        api_s = time.perf_counter() - start

    api_rate, copy_rate = got / api_s, copy_rows / copy_s
    lat = summary(latencies)
    rows = [
        {
            "path": f"API sync, {args.page_size:,}-row pages, 1 client",
            "rows": f"{got:,}",
            "seconds": f"{api_s:,.1f}",
            "rows/s": f"{api_rate:,.0f}",
            "page p50 / p99": f"{lat['p50_ms']:,.0f} / {lat['p99_ms']:,.0f} ms",
            "ratio": f"{api_rate / copy_rate:.3f}",
        },
        {
            "path": "COPY (SELECT the same rows and columns) TO STDOUT (baseline)",
            "rows": f"{copy_rows:,}",
            "seconds": f"{copy_s:,.2f}",
            "rows/s": f"{copy_rate:,.0f}",
            "page p50 / p99": "-",
            "ratio": "1.000",
        },
    ]
    db_name = url.rsplit("/", 1)[-1]
    complete = got == expected == copy_rows
    return {
        "scenario": "6. Incremental sync: a client catching up changed rows",
        "rows": rows,
        "notes": (
            f"{now()}; {machine()}; load average {load_before} -> {load()}. "
            f"Ratio = API rows/s / COPY rows/s. Database {db_name} with "
            f"{have + filled:,} participants"
            + (f" ({filled:,} synthetic ones added for this run)" if filled else "")
            + f"; the client starts {expected:,} changes behind the newest. gunicorn "
            f"{args.workers} sync workers (DEBUG off), admin token (full NIK, decrypted per row), "
            f"{pages:,} pages; "
            f"COPY sent {copy_bytes / 1e6:,.1f} MB of text. "
            + (
                "Every row arrived exactly once in both paths."
                if complete
                else f"ROW COUNT MISMATCH: expected {expected:,}, API {got:,}, COPY {copy_rows:,}."
            )
        ),
    }


def main() -> None:
    print_result(run(parser().parse_args()))


if __name__ == "__main__":
    main()
