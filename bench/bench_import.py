"""Scenario 1, participant import, into the generated data set: the project's bulk path (POST
/api/v1/participants/bulk/ through gunicorn, 1,000-row requests, 4 clients) vs `psql \\copy` of
the same rows into the same table, in the same run.

    .venv/bin/python -m bench --size 10m --existing --only 1

Both write into enrollment_participant of the loaded data set (its indexes at their real size).
The bulk rows stay (they are registered through the service, with coverage rows). The COPY rows
are the same rows with the NIK serial and KPJ moved to a free range; they are deleted after the
measurement. N = 10,000 at 10k, 20,000 otherwise (2,000 with --quick).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from bench.common import run_alone, use_database
from bench.harness import ApiServer

VILLAGE = "32.73.05.1001"
COPY_KPJ_BASE = 80_000_000_000  # far from the live sequence and from the generator's 9e9 range


def _nik(born: date, sex: str, serial: int) -> str:
    day = born.day + (40 if sex == "F" else 0)
    return f"327305{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


def _copy_nik(nik: str) -> str:
    return nik[:12] + f"{int(nik[12:]) - 9000:04d}"  # serial 9900.. -> 0900..


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    """N registrations with NIK serials 9900-9999 (the generator's serials stay far below),
    skipping NIKs already registered (earlier runs) for either side of the comparison."""
    from enrollment.models import Participant
    from enrollment.pii import lookup_digests_many

    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < n:
        batch = []
        while len(batch) < 2 * (n - len(rows)):
            born = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
            nik = _nik(born, rng.choice("MF"), rng.randrange(9900, 10000))
            if nik not in seen:
                seen.add(nik)
                batch.append((nik, born))
        digests = lookup_digests_many([k for k, _b in batch] + [_copy_nik(k) for k, _b in batch])
        taken = {
            digests[bytes(d)]
            for d in Participant.objects.filter(nik_digest__in=list(digests)).values_list(
                "nik_digest", flat=True
            )
        }
        for nik, born in batch:
            if len(rows) == n or nik in taken or _copy_nik(nik) in taken:
                continue
            rows.append(
                {
                    "nik": nik,
                    "full_name": "Pekerja Impor",
                    "birth_date": born.isoformat(),
                    "sex": "F" if int(nik[6:8]) > 40 else "M",
                    "phone": f"0812{rng.randrange(10_000_000, 99_999_999)}",
                    "village": VILLAGE,
                    "address": "Jl. Benchmark 1",
                    "occupation": "petani",
                    "declared_income": 1_000_000,
                    "consent_data": True,
                }
            )
    return rows


def _copy_baseline(url: str, rows: list[dict[str, Any]], tag: int) -> float:
    """(NIK stored as digest + ciphertext, as the services store it.)
    psql \\copy of the same rows into enrollment_participant (NIK serial digits and KPJ moved
    so they do not collide with the bulk rows); the copied rows are deleted afterwards."""
    from enrollment.pii import nik_columns

    psql = ["psql", url, "-q", "-v", "ON_ERROR_STOP=1"]
    cols = (
        "nik_digest,nik_encrypted,kpj_number,full_name,birth_date,sex,phone,email,language,village_id,province_id,"
        "regency_id,address,occupation_id,declared_income,jht,channel,consent_data,"
        "consent_reminders,created_at,updated_at"
    )
    kpj0 = COPY_KPJ_BASE + tag * 1_000_000
    stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)  # "" is an empty string, not NULL
        for i, r in enumerate(rows):
            digest, encrypted = nik_columns(_copy_nik(r["nik"]))
            w.writerow(["\\x" + digest.hex(), encrypted, f"{kpj0 + i}", r["full_name"],
                        r["birth_date"], r["sex"],
                        "+62" + r["phone"][1:], "", "id", r["village"], "32", "32.73",
                        r["address"], r["occupation"], r["declared_income"], "f", "partner",
                        "t", "f", stamp, stamp])  # fmt: skip
        path = f.name
    try:
        # psql's own `\\timing` of the \\copy: the COPY, not psql's start and connection (which
        # would otherwise be a large part of a few thousand rows)
        out = subprocess.run(
            [*psql, "-c", "\\timing on", "-c", f"\\copy enrollment_participant ({cols}) FROM "
             f"'{path}' WITH (FORMAT csv)"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        timed = re.search(r"Time: ([0-9.]+) ms", out)
        if timed is None:
            raise RuntimeError(f"no timing in psql's output: {out[:200]!r}")
        elapsed = float(timed.group(1)) / 1000
    finally:
        os.unlink(path)
        subprocess.run(
            [*psql, "-c", "DELETE FROM enrollment_participant WHERE kpj_number BETWEEN "
             f"'{kpj0}' AND '{kpj0 + len(rows) - 1}'"],
            check=True,
        )  # fmt: skip
    return elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url)
    from enrollment.api.clients import create_api_client
    from enrollment.models import Partner

    n = 2_000 if args.quick else 10_000 if args.size == "10k" else 20_000
    batch, senders = 1000, 4
    tag = int(time.time()) % 10_000
    rows = _rows(n, seed=tag)
    partner, _c = Partner.objects.get_or_create(
        code="BENCHIMPORT", defaults={"name": "Bench import partner", "kind": "bundle"}
    )
    token = create_api_client(name=f"bench-import-{tag}", scope="partner", partner=partner).token
    chunks = [rows[i : i + batch] for i in range(0, n, batch)]
    with ApiServer(args.database_url) as server:

        def send(chunk: list[dict[str, Any]]) -> dict[str, int]:
            key = str(uuid.uuid4())
            status, body = server.call(
                token, "POST", "/api/v1/participants/bulk/", {"rows": chunk}, Idempotency_Key=key
            )
            if status != 200:
                raise RuntimeError(f"bulk -> {status} {str(body)[:300]}")
            return dict(body["summary"])

        start = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            summaries = list(pool.map(send, chunks))
        bulk_s = time.perf_counter() - start
    created = sum(s.get("created", 0) for s in summaries)
    if created != n:
        raise RuntimeError(f"bulk created {created} of {n}: {summaries[:2]}")
    copy_s = _copy_baseline(args.database_url, rows, tag)
    bulk_rate, copy_rate = n / bulk_s, n / copy_s
    return {
        "scenario": "1. Participant import",
        "rows": [
            {
                "path": f"bulk API, {n:,} new rows in {batch:,}-row requests, {senders} clients, "
                "gunicorn 4 workers",
                "rows/s": f"{bulk_rate:,.0f}",
                "time": f"{bulk_s:.1f} s",
                "ratio to COPY": f"{bulk_rate / copy_rate:.3f}",
            },
            {
                "path": "psql \\copy of the same rows into the same table (baseline)",
                "rows/s": f"{copy_rate:,.0f}",
                "time": f"{copy_s:.2f} s",
                "ratio to COPY": "1.000",
            },
        ],
        "notes": (
            "Both into enrollment_participant of the data set (same indexes, constraints and "
            "sync trigger). The bulk path also validates every row and writes the coverage "
            "row and the idempotency record; COPY writes the participant rows only. Ambition: "
            "bulk >= 50 % of COPY."
        ),
    }


if __name__ == "__main__":
    run_alone(run)
