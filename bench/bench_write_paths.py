"""A/B of the single payment's two write paths on the generated data set, in one process: the
chained statements used on one server (contributions/services.py `_write_payment_chain`, the
receipt in one statement) against the statement-per-row path a Citus cluster uses (forced by the
same `on_cluster` switch), in interleaved blocks so both see the same machine; then plain INSERTs
of the same ledger rows (the baseline of scenario 2) in the same run.

    .venv/bin/python -m bench.bench_write_paths --size 10k --payments 400

Payments go to distinct participants in grace or lapsed (like scenario 2), one transaction each,
the receipt queued (NOTIFY_ON_PAYMENT), DEBUG off in this process (no query log), as in
production. Writes real payments: run it on a data set made for benchmarks.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import SIZES, dataset_url, use_database

LEDGER_COLUMNS = (
    "participant_id", "kind", "amount", "months", "period_start", "payment_id", "reason",
    "created_at",
)  # fmt: skip


def run(database_url: str, payments: int, block: int) -> dict[str, Any]:
    use_database(database_url)
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from contributions import services
    from contributions.messaging import notifications
    from contributions.models import Coverage, LedgerEntry
    from contributions.quotes import quote_payment
    from enrollment.models import Participant

    settings.DEBUG = False  # no query log in this process: the service as it runs in production
    settings.NOTIFY_ON_PAYMENT = True
    with connection.cursor() as cur:
        cur.execute(
            "SELECT participant_id FROM contributions_coverage WHERE status IN ('grace', "
            "'lapsed') ORDER BY participant_id LIMIT %s",
            [2 * payments],
        )
        ids = [pid for (pid,) in cur.fetchall()]
    if len(ids) < 2 * payments or payments % block:
        raise SystemExit(f"{len(ids)} participants owe; --payments a multiple of --block")
    people = Participant.objects.select_related("occupation").in_bulk(ids)
    covs = Coverage.objects.in_bulk(ids)
    today, paid_at = timezone.localdate(), timezone.now()
    plans = [(people[i], quote_payment(people[i], covs[i], months=1, as_of=today).amount)
             for i in ids]  # fmt: skip
    tag = time.strftime("%H%M%S")
    switches = (services, notifications)
    real = [m.on_cluster for m in switches]
    seconds = {"chained": 0.0, "per statement": 0.0}
    paths = list(seconds)
    blocks = [plans[i : i + block] for i in range(0, len(plans), block)]
    try:
        for n, chunk in enumerate(blocks):  # A B, B A, A B ...: each path first half the time
            path = paths[(n % 2) ^ (n // 2 % 2)]
            for module, on in zip(switches, real, strict=True):
                module.on_cluster = on if path == "chained" else (lambda: True)  # type: ignore[attr-defined]
            t = time.perf_counter()
            for p, amount in chunk:
                services.record_payment(participant=p, amount=amount, months=1,
                                        payer="participant", channel="bank",
                                        reference=f"AB-{tag}-{p.pk}", paid_at=paid_at)  # fmt: skip
            seconds[path] += time.perf_counter() - t
    finally:
        for module, on in zip(switches, real, strict=True):
            module.on_cluster = on  # type: ignore[attr-defined]
    rows = list(
        LedgerEntry.objects.filter(payment__reference__startswith=f"AB-{tag}-").values_list(
            *LEDGER_COLUMNS
        )
    )
    assert len(rows) == 2 * payments, len(rows)
    cols = ", ".join(LEDGER_COLUMNS)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_ledger")
        cur.execute("CREATE TABLE bench_ledger (LIKE contributions_ledgerentry INCLUDING ALL)")
        t = time.perf_counter()
        for row in rows:  # autocommit: one transaction per row, like the service
            cur.execute(f"INSERT INTO bench_ledger ({cols}) VALUES ({', '.join(['%s'] * 8)})", row)
        plain = len(rows) / (time.perf_counter() - t)
        cur.execute("DROP TABLE bench_ledger")
    out: dict[str, Any] = {"payments each way": payments, "plain INSERTs rows/s": round(plain)}
    for path, s in seconds.items():
        out[path] = {"payments/s": round(payments / s), "ratio": round(payments / s / plain, 3)}
    out["chained / per statement"] = round(seconds["per statement"] / seconds["chained"], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", choices=list(SIZES), default="10k")
    p.add_argument("--payments", type=int, default=400, help="payments each way")
    p.add_argument("--block", type=int, default=50, help="payments per block before switching")
    a = p.parse_args()
    print(run(dataset_url(a.size), a.payments, a.block))


if __name__ == "__main__":
    main()
