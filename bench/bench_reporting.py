"""Reporting: dashboard request time (rollups) vs the naive GROUP BY over the raw tables, and the
rollup refresh after N new payments vs a full rebuild of the year, in the same run.

Own database, dropped and re-created each run (default
postgres://postgres@127.0.0.1:5432/bpjsportal_bench_reporting, override with DATABASE_URL):

    .venv/bin/python bench/bench_reporting.py --participants 200000 --new-payments 1000

Data: participants registered over this year (INSERT ... SELECT generate_series, set-based),
one to six monthly payments each (payment + ledger rows, set-based), 1 % of the last payments
reversed, coverage brought up to date by the real daily refresh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bpjsportal_bench_reporting"

GENERATE = """
WITH v AS (
    SELECT array_agg(code ORDER BY code) AS codes FROM (
        SELECT code FROM enrollment_region WHERE level = 4 AND (code LIKE '32.%%'
            OR code LIKE '35.%%' OR code LIKE '73.%%' OR code LIKE '11.%%' OR code LIKE '94.%%')
        ORDER BY md5(code) LIMIT 2000) x
), o AS (SELECT array_agg(code ORDER BY code) AS codes FROM enrollment_occupation)
INSERT INTO enrollment_participant (nik_digest, nik_encrypted, kpj_number, full_name, birth_date,
    sex, phone, email, language, village_id, province_id, regency_id, address, occupation_id,
    declared_income, jht, channel, partner_id, consent_data, consent_reminders, created_at,
    updated_at)
SELECT sha256(i::text::bytea), 'placeholder:' || i, lpad(i::text, 11, '0'), 'Bench ' || i,
       date '1960-01-01' + (i * 7919 %% 14600), CASE WHEN i %% 2 = 0 THEN 'M' ELSE 'F' END,
       '+6281' || lpad(i::text, 9, '0'), '', 'id', vil, left(vil, 2), left(vil, 5), 'Jl. Bench',
       o.codes[1 + i %% array_length(o.codes, 1)], 1000000, i %% 4 = 0,
       (ARRAY['agent','branch','partner','self'])[1 + i %% 4], NULL, true, false,
       %(year_start)s + ((i::bigint * 104729) %% %(days)s) * interval '1 day' + interval '3 hours',
       now()
FROM generate_series(1, %(n)s) i, v, o,
     LATERAL (SELECT v.codes[1 + (i * 31) %% array_length(v.codes, 1)] AS vil) vv
"""

PAYMENTS = """
INSERT INTO contributions_payment (participant_id, amount, months, period_start, payer, channel,
    reference, paid_at, reactivation, created_at)
SELECT pa.id, CASE WHEN pa.jht THEN 36800 ELSE 16800 END, 1,
       (date_trunc('month', pa.created_at AT TIME ZONE 'Asia/Jakarta')
        + j * interval '1 month')::date,
       'participant', 'bank', 'B-' || pa.id || '-' || j,
       pa.created_at + j * interval '30 days' + interval '2 hours', false, now()
FROM enrollment_participant pa, generate_series(0, 5) j
WHERE j < 1 + pa.id % 6 AND pa.created_at + j * interval '30 days' + interval '2 hours' < now()
"""

LEDGER = """
INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months, period_start,
    payment_id, reason, created_at)
SELECT participant_id, 'payment', amount, months, period_start, id, '', now()
FROM contributions_payment WHERE id > %(after)s ORDER BY id
"""


def fresh_database(url: str) -> None:
    from bpjsportal.launcher import _ensure_database_exists

    _ensure_database_exists(url, fresh=True)


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=200_000)
    parser.add_argument("--new-payments", type=int, default=1_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    fresh_database(url)
    import django

    django.setup()
    from datetime import date

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from contributions.services import refresh_coverage_statuses
    from reporting.rollups import rebuild_rollups, refresh_today

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)
    today = timezone.localdate()
    year_start = date(today.year, 1, 1)
    t0 = time.perf_counter()
    with connection.cursor() as c:
        c.execute(
            GENERATE,
            {"n": args.participants, "days": (today - year_start).days, "year_start": year_start},
        )
        c.execute("""INSERT INTO contributions_coverage (participant_id, status, start_month,
                     continuous_months, reactivations, balance, updated_at)
                     SELECT id, 'grace', date_trunc('month', created_at AT TIME ZONE
                     'Asia/Jakarta')::date, 0, 0, 0, now() FROM enrollment_participant""")
        c.execute(PAYMENTS)
        c.execute(LEDGER, {"after": 0})
        c.execute("""INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months,
                     reverses_id, reason, created_at)
                     SELECT e.participant_id, 'reversal', -e.amount, 0, e.id, 'bench', now()
                     FROM (SELECT DISTINCT ON (participant_id) * FROM contributions_ledgerentry
                           WHERE kind = 'payment' ORDER BY participant_id, id DESC) e
                     WHERE e.participant_id % 100 = 0""")
        c.execute("""UPDATE contributions_coverage c SET paid_through = x.pt, balance = x.bal
                     FROM (SELECT e.participant_id,
                                  max(e.period_start) FILTER (WHERE e.kind = 'payment' AND
                                      NOT EXISTS (SELECT 1 FROM contributions_ledgerentry r
                                                  WHERE r.reverses_id = e.id)) AS pt,
                                  sum(e.amount) AS bal
                           FROM contributions_ledgerentry e GROUP BY e.participant_id) x
                     WHERE x.participant_id = c.participant_id""")
        c.execute("ANALYZE")
        c.execute("SELECT count(*) FROM contributions_ledgerentry")
        ledger_rows = c.fetchone()[0]  # type: ignore[index]
    refresh_coverage_statuses(as_of=today)
    generate_s = time.perf_counter() - t0

    full = rebuild_rollups(start=year_start, end=today)
    with connection.cursor() as c:
        c.execute("ANALYZE reporting_dailyrollup")
        c.execute("SELECT count(*) FROM reporting_dailyrollup WHERE day = %s", [today])
        rows_today = c.fetchone()[0]  # type: ignore[index]

    user = get_user_model().objects.create_superuser("bench", password=None)
    client = Client()
    client.force_login(user)
    client.get("/reports/")  # warm caches
    page_s = timed(lambda: client.get("/reports/"), repeat=7)
    page_prov_s = timed(lambda: client.get("/reports/?province=32"), repeat=7)
    api_s = timed(lambda: client.get("/api/v1/reports/progress/"), repeat=7)

    def naive() -> None:
        with connection.cursor() as c:
            c.execute("""SELECT pa.province_id, cv.status, count(*) FROM enrollment_participant pa
                         JOIN contributions_coverage cv ON cv.participant_id = pa.id
                         GROUP BY 1, 2""")
            c.fetchall()
            c.execute("""SELECT pa.occupation_id, pa.channel, count(*) FILTER
                         (WHERE cv.status = 'active') FROM enrollment_participant pa
                         JOIN contributions_coverage cv ON cv.participant_id = pa.id
                         GROUP BY 1, 2""")
            c.fetchall()
            c.execute(
                """SELECT pa.province_id, sum(e.amount) FROM contributions_ledgerentry e
                         JOIN enrollment_participant pa ON pa.id = e.participant_id
                         WHERE e.created_at >= %s GROUP BY 1""",
                [year_start],
            )
            c.fetchall()

    naive_s = timed(naive, repeat=7)

    with connection.cursor() as c:
        c.execute("SELECT max(id) FROM contributions_payment")
        after = c.fetchone()[0]  # type: ignore[index]
        c.execute(
            """INSERT INTO contributions_payment (participant_id, amount, months,
                     period_start, payer, channel, reference, paid_at, reactivation, created_at)
                     SELECT cv.participant_id, CASE WHEN pa.jht THEN 36800 ELSE 16800 END, 1,
                            date_trunc('month', now() AT TIME ZONE 'Asia/Jakarta')::date,
                            'participant', 'ewallet', 'NEW-' || cv.participant_id, now(), false,
                            now()
                     FROM contributions_coverage cv
                     JOIN enrollment_participant pa ON pa.id = cv.participant_id
                     WHERE cv.status <> 'active' ORDER BY cv.participant_id LIMIT %s""",
            [args.new_payments],
        )
        c.execute(LEDGER, {"after": after})
    refresh_s = timed(refresh_today)

    lines = [
        f"bench_reporting: {args.participants:,} participants, {ledger_rows:,} ledger rows, "
        f"{full.days} days ({full.rows:,} rollup rows, {rows_today:,} for today); "
        f"data generated in {generate_s:.1f} s",
        f"full rebuild of the year: {full.seconds:.1f} s ({full.seconds / full.days * 1000:.0f}"
        " ms a day)",
        f"refresh today after {args.new_payments:,} new payments: {refresh_s * 1000:.0f} ms",
        f"dashboard page /reports/ (rollups): {page_s * 1000:.0f} ms median of 7",
        f"dashboard page, one province: {page_prov_s * 1000:.0f} ms",
        f"progress API: {api_s * 1000:.0f} ms",
        f"naive GROUP BY over participants/coverage/ledger (3 queries): {naive_s * 1000:.0f} ms",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
