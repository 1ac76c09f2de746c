"""Scenario 2, payment posting, on the generated data set: the project's paths vs plain INSERTs
of the same ledger rows, in the same run.

    .venv/bin/python -m bench --size 10m --existing --only 2
    .venv/bin/python -m bench.bench_payments --size 10k        # alone, prints the result

- service: `record_payment` for distinct participants in grace or lapsed (quoted first), one
  transaction each, in this process (DEBUG off here too since 2026-12-05: before, Django's
  query log cost every statement of the service and of its baseline);
- API: POST /api/v1/payments/ through gunicorn (4 sync workers), `clients` concurrent clients;
  rows/s and p50/p95;
- sponsor batch: one `post_sponsor_batch` of `batch` rows;
- baseline for each: the ledger rows the path wrote, INSERTed again into a copy of the ledger
  table (LIKE ... INCLUDING ALL: same columns, checks and indexes; no triggers, no foreign
  keys) — one transaction per row for the single paths, one transaction for the batch.
- status: the daily status refresh and the status queries over the whole data set.
Everything is written through the services, so `manage.py check_ledger` still passes.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import ms, percentile, run_alone, use_database
from bench.harness import ApiServer

LEDGER_COLUMNS = (
    "participant_id", "kind", "amount", "months", "period_start", "payment_id", "reason",
    "created_at",
)  # fmt: skip


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _pick(n: int, skip: set[int]) -> list[int]:
    """Participants who owe this month (grace or lapsed), lowest ids first."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT participant_id FROM contributions_coverage WHERE status IN ('grace', "
            "'lapsed') ORDER BY participant_id LIMIT %s",
            [n + len(skip)],
        )
        return [pid for (pid,) in cur.fetchall() if pid not in skip][:n]


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url)
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    settings.DEBUG = False  # no query log in this process: the service as in production

    from contributions.models import Coverage, LedgerEntry
    from contributions.quotes import quote_payment
    from contributions.services import (
        post_sponsor_batch,
        record_payment,
        refresh_coverage_statuses,
    )
    from enrollment.api.clients import create_api_client
    from enrollment.models import Participant, Partner

    small = args.quick or args.size == "10k"
    n_single, n_api, n_batch = (200, 200, 1000) if small else (2000, 2000, 10_000)
    clients = 8
    tag = time.strftime("%H%M%S")
    today = timezone.localdate()
    paid_at = timezone.now()

    def load(ids: list[int]) -> list[Participant]:
        by_id = Participant.objects.select_related("occupation").in_bulk(ids)
        return [by_id[i] for i in ids]

    used: set[int] = set()
    single = load(_pick(n_single, used))
    used |= {p.pk for p in single}
    api_people = load(_pick(n_api, used))
    used |= {p.pk for p in api_people}
    batch_people = load(_pick(n_batch, used))
    covs = Coverage.objects.in_bulk([p.pk for p in single + api_people])
    plans = [(p, quote_payment(p, covs[p.pk], months=1, as_of=today).amount) for p in single]
    api_plans = [(p, quote_payment(p, covs[p.pk], months=1, as_of=today).amount)
                 for p in api_people]  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM contributions_ledgerentry")
        mark = cur.fetchone()[0]  # type: ignore[index]

    # --- single payments through the service, one transaction each ------------------------------
    def post_single() -> None:
        for i, (p, amount) in enumerate(plans):
            ref = f"BENCH-{tag}-S{i}"
            record_payment(participant=p, amount=amount, months=1, payer="participant",
                           channel="bank", reference=ref, paid_at=paid_at)  # fmt: skip

    t_single, _ = _timed(post_single)

    # --- single payments through the API, concurrent clients ------------------------------------
    client = create_api_client(name=f"bench-{tag}", scope="channel", payment_channel="ewallet")
    token = client.token
    lat: list[float] = []
    lock = threading.Lock()
    with ApiServer(args.database_url) as server:

        def pay(item: tuple[int, tuple[Participant, int]]) -> None:
            i, (p, amount) = item
            body = {"kpj_number": p.kpj_number, "amount": amount, "months": 1,
                    "reference": f"BENCH-{tag}-A{i}", "paid_at": paid_at.isoformat(),
                    "payer": "participant"}  # fmt: skip
            t = time.perf_counter()
            status, out = server.call(token, "POST", "/api/v1/payments/", body)
            elapsed = time.perf_counter() - t
            if status != 201:
                raise RuntimeError(f"POST /api/v1/payments/ -> {status} {out}")
            with lock:
                lat.append(elapsed)

        t_api, _ = _timed(lambda: list(ThreadPoolExecutor(clients).map(pay, enumerate(api_plans))))

    # --- a sponsor batch --------------------------------------------------------------------
    sponsor, _c = Partner.objects.get_or_create(
        code="BENCHSPONSOR", defaults={"name": "Bench sponsor", "kind": "sponsor"}
    )
    # A partner pays for the participants it registered (or who consented to it): make the
    # batch's people the sponsor's, outside the timing, so the measured path is the partner's.
    Participant.objects.filter(pk__in=[p.pk for p in batch_people]).update(partner=sponsor)
    rows = [(p.kpj_number, 3) for p in batch_people]
    t_batch, _ = _timed(
        lambda: post_sponsor_batch(
            sponsor=sponsor, reference=f"BENCH-{tag}", rows=rows, paid_at=timezone.now()
        )
    )

    # --- baseline: the same ledger rows, plain INSERTs into a copy of the ledger table ----------
    new = list(
        LedgerEntry.objects.filter(id__gt=mark).order_by("id").values_list("payment__channel",
                                                                          *LEDGER_COLUMNS)
    )  # fmt: skip
    single_rows = [r[1:] for r in new if r[0] == "bank"]
    api_rows = [r[1:] for r in new if r[0] == "ewallet"]
    batch_rows = [r[1:] for r in new if r[0] == "partner"]
    assert (len(single_rows), len(api_rows), len(batch_rows)) == (n_single, n_api, n_batch)
    cols = ", ".join(LEDGER_COLUMNS)
    insert = f"INSERT INTO bench_ledger ({cols}) VALUES ({', '.join(['%s'] * 8)})"
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_ledger")
        cur.execute("CREATE TABLE bench_ledger (LIKE contributions_ledgerentry INCLUDING ALL)")

    def plain_each(rows_: list[tuple[Any, ...]]) -> None:
        with connection.cursor() as cur:
            for row in rows_:  # autocommit: one transaction per row, like the service
                cur.execute(insert, row)

    def plain_batch() -> None:
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(insert, batch_rows)

    t_plain_single, _ = _timed(lambda: plain_each(single_rows))
    t_plain_api, _ = _timed(lambda: plain_each(api_rows))
    t_plain_batch, _ = _timed(plain_batch)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_ledger")

    # --- status over the data set -------------------------------------------------------------
    t_refresh, moved = _timed(lambda: refresh_coverage_statuses(as_of=today))

    def by_status() -> dict[str, int]:
        with connection.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM contributions_coverage GROUP BY status")
            return dict(cur.fetchall())

    t_group, counts = _timed(by_status)
    pid = single[-1].pk
    t_one, _ = _timed(lambda: Coverage.objects.filter(pk=pid).values_list("status").get())

    def rate(n: int, t: float) -> float:
        return n / t if t else 0.0

    s, ps = rate(n_single, t_single), rate(n_single, t_plain_single)
    a, pa = rate(n_api, t_api), rate(n_api, t_plain_api)
    b, pb = rate(n_batch, t_batch), rate(n_batch, t_plain_batch)
    result_rows = [
        {"measure": f"single payments, `record_payment`, {n_single:,} (one transaction each)",
         "project rows/s": f"{s:,.0f}", "plain INSERTs rows/s": f"{ps:,.0f}",
         "ratio": f"{s / ps:.3f}", "latency": ""},
        {"measure": f"single payments, POST /api/v1/payments/, {n_api:,} by {clients} clients",
         "project rows/s": f"{a:,.0f}", "plain INSERTs rows/s": f"{pa:,.0f}",
         "ratio": f"{a / pa:.3f}",
         "latency": f"p50 {ms(statistics.median(lat))}, p95 {ms(percentile(lat, 95))}"},
        {"measure": f"sponsor batch of {n_batch:,} rows, `post_sponsor_batch`",
         "project rows/s": f"{b:,.0f}", "plain INSERTs rows/s": f"{pb:,.0f}",
         "ratio": f"{b / pb:.3f}", "latency": f"whole batch {ms(t_batch)}"},
        {"measure": f"daily status refresh over {sum(counts.values()):,} coverage rows",
         "project rows/s": "", "plain INSERTs rows/s": "", "ratio": "",
         "latency": f"{ms(t_refresh)} (moved {moved})"},
        {"measure": "count by status (GROUP BY)", "project rows/s": "",
         "plain INSERTs rows/s": "", "ratio": "", "latency": ms(t_group)},
        {"measure": "one participant's status (primary key)", "project rows/s": "",
         "plain INSERTs rows/s": "", "ratio": "", "latency": ms(t_one)},
    ]  # fmt: skip
    return {
        "scenario": "2. Payment posting",
        "rows": result_rows,
        "notes": (
            "Ratio = project rows/s ÷ plain INSERTs of the same ledger rows into a copy of the "
            "ledger table (same checks and indexes) in the same run; the API baseline is the "
            "one-per-transaction INSERT from one client. Payments go to participants in grace "
            f"or lapsed; statuses now {counts}."
        ),
    }


if __name__ == "__main__":
    run_alone(run)
