"""Payments per second through the services vs plain INSERTs of the same ledger rows, and the
time of status queries over N participants.

Runs standalone against its own database (dropped and re-created each run):
DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bpjsportal_bench.

    .venv/bin/python bench/bench_payments.py --participants 1000000 --single 2000 --batch 10000

- single: `record_payment` for distinct participants, one transaction each (a cash payment or
  a bank notification); baseline: the same ledger rows INSERTed one per transaction into a copy
  of the ledger table (same columns, checks and indexes; no triggers, no foreign keys).
- batch: one `post_sponsor_batch` of 10,000 rows; baseline: the same 10,000 ledger rows
  INSERTed in one transaction.
- status: queries over the Coverage table of N participants, and the daily set-based refresh.
  The participants are bulk-inserted with SQL (not through registration) and get a spread of
  paid-through months; only the ones used for payments have ledger entries.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bpjsportal_bench"


def fresh_database(url: str) -> None:
    from bpjsportal.launcher import _ensure_database_exists

    _ensure_database_exists(url, fresh=True)


def setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    fresh_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


PARTICIPANTS_SQL = """
INSERT INTO enrollment_participant
    (nik_digest, nik_encrypted, kpj_number, full_name, birth_date, sex, phone, email, language,
     village_id, province_id, regency_id, address, occupation_id, declared_income, jht, channel,
     consent_data, consent_reminders, created_at, updated_at)
SELECT sha256(g::text::bytea), 'placeholder:' || g, lpad((20000000000 + g)::text, 11, '0'),
       'Pekerja ' || g, DATE '1990-01-01', 'M', '+6281200000000', '', 'id', %(village)s,
       '32', '32.73', 'Jl. Bench', 'petani', 1000000, (g %% 3 = 0), 'self', true, false,
       now(), now()
FROM generate_series(1, %(n)s) AS g
"""
COVERAGE_SQL = """
INSERT INTO contributions_coverage
    (participant_id, status, start_month, paid_through, active_since, lapsed_since,
     continuous_months, reactivations, balance, updated_at)
SELECT p.id, 'active', %(start)s::date - interval '12 months',
       CASE WHEN p.id <= %(fresh)s THEN NULL
            ELSE (%(month)s::date - make_interval(months => (p.id %% 9)::int))::date END,
       NULL, NULL, 0, 0, 0, now()
FROM enrollment_participant p
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    setup(os.environ.get("DATABASE_URL", DEFAULT_URL))

    from django.db import connection, transaction
    from django.utils import timezone

    from contributions.models import Coverage, LedgerEntry
    from contributions.services import (
        post_sponsor_batch,
        quote_payment,
        record_payment,
        refresh_coverage_statuses,
    )
    from enrollment.models import Participant, Partner

    n = max(args.participants, args.single + args.batch)
    today = timezone.localdate()
    month = today.replace(day=1)
    fresh = args.single + args.batch
    with connection.cursor() as cur:
        t_load, _ = timed(
            lambda: cur.execute(PARTICIPANTS_SQL, {"village": "32.73.05.1001", "n": n})
        )
        # the first `fresh` participants never paid and registered this month (valid for the
        # payment services); the others get paid-through months spread over 9 months
        cur.execute(COVERAGE_SQL, {"start": month, "month": month, "fresh": fresh})
        cur.execute(
            "UPDATE contributions_coverage SET start_month = %s WHERE participant_id <= %s",
            [month, fresh],
        )
        cur.execute("ANALYZE")

    people = list(Participant.objects.select_related("occupation").order_by("id")[:fresh])
    single, batch_people = people[: args.single], people[args.single :]

    # --- single payments through record_payment ------------------------------------------
    plans = []
    for p in single:
        cov = Coverage.objects.get(pk=p.pk)
        plans.append((p, quote_payment(p, cov, months=1, as_of=today).amount))
    now = timezone.now()

    def post_single() -> None:
        for i, (p, amount) in enumerate(plans):
            record_payment(
                participant=p,
                amount=amount,
                months=1,
                payer="participant",
                channel="bank",
                reference=f"BENCH-{i}",
                paid_at=now,
            )

    t_single, _ = timed(post_single)
    columns = "participant_id, kind, amount, months, period_start, payment_id, reason, created_at"
    rows = list(
        LedgerEntry.objects.order_by("id").values_list(
            "participant_id",
            "kind",
            "amount",
            "months",
            "period_start",
            "payment_id",
            "reason",
            "created_at",
        )
    )
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_ledger")
        cur.execute("CREATE TABLE bench_ledger (LIKE contributions_ledgerentry INCLUDING ALL)")
    insert = f"INSERT INTO bench_ledger ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"

    def plain_single() -> None:
        with connection.cursor() as cur:
            for row in rows:  # autocommit: one transaction per row, like the service
                cur.execute(insert, row)

    t_plain_single, _ = timed(plain_single)

    # --- a sponsor batch of `batch` rows ----------------------------------------------------
    sponsor = Partner.objects.create(code="BENCH", name="Bench sponsor", kind="sponsor")
    batch_rows = [(p.kpj_number, 3) for p in batch_people]
    t_batch, _ = timed(
        lambda: post_sponsor_batch(
            sponsor=sponsor, reference="BENCH-1", rows=batch_rows, paid_at=timezone.now()
        )
    )
    batch_ledger = list(
        LedgerEntry.objects.filter(payment__batch__isnull=False)
        .order_by("id")
        .values_list(
            "participant_id",
            "kind",
            "amount",
            "months",
            "period_start",
            "payment_id",
            "reason",
            "created_at",
        )
    )

    def plain_batch() -> None:
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(insert, batch_ledger)

    t_plain_batch, _ = timed(plain_batch)

    # --- status over N participants ---------------------------------------------------------
    with connection.cursor() as cur:
        cur.execute("ANALYZE contributions_coverage")
    t_refresh, moved = timed(lambda: refresh_coverage_statuses(as_of=today))
    t_refresh2, _ = timed(lambda: refresh_coverage_statuses(as_of=today))

    def by_status() -> dict[str, int]:
        with connection.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM contributions_coverage GROUP BY status")
            return dict(cur.fetchall())

    t_group, counts = timed(by_status)
    t_lapsed, _ = timed(lambda: Coverage.objects.filter(status="lapsed").count())
    pid = people[-1].pk
    t_one, _ = timed(lambda: Coverage.objects.filter(pk=pid).values_list("status").get())
    t_page, _ = timed(
        lambda: list(Coverage.objects.filter(status="grace").order_by("paid_through", "pk")[:25])
    )

    ms = 1000
    where = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"## Payments benchmark ({time.strftime('%Y-%m-%d')}, {where}, PostgreSQL local)")
    print()
    print("| measure | service | plain INSERTs | ratio |")
    print("|---|---|---|---|")
    s_rate, p_rate = len(plans) / t_single, len(rows) / t_plain_single
    print(f"| single payments/s ({len(plans)}, one transaction each) | {s_rate:,.0f} "
          f"| {p_rate:,.0f} | {p_rate / s_rate:.1f}x |")  # fmt: skip
    b_rate, pb_rate = len(batch_rows) / t_batch, len(batch_ledger) / t_plain_batch
    print(f"| sponsor batch of {len(batch_rows):,} rows: rows/s (batch {t_batch:.2f} s) "
          f"| {b_rate:,.0f} | {pb_rate:,.0f} | {pb_rate / b_rate:.1f}x |")  # fmt: skip
    print()
    print(f"Status over {n:,} participants ({counts}):")
    print()
    print("| query | time |")
    print("|---|---|")
    print(f"| bulk load of the participants (SQL INSERT ... SELECT) | {t_load:.1f} s |")
    print(f"| daily refresh (2 set-based UPDATEs, moved {moved}) | {t_refresh * ms:,.0f} ms |")
    print(f"| daily refresh again (nothing to move) | {t_refresh2 * ms:,.0f} ms |")
    print(f"| count by status (GROUP BY) | {t_group * ms:,.0f} ms |")
    print(f"| count lapsed (index) | {t_lapsed * ms:,.1f} ms |")
    print(f"| one participant's status (primary key) | {t_one * ms:,.2f} ms |")
    print(f"| first page of grace, oldest first (index) | {t_page * ms:,.1f} ms |")


if __name__ == "__main__":
    main()
