"""Scenario 5, the reminder run: plan and send N payment reminders to the fake gateway through
real Celery workers.

    .venv/bin/python -m bench --size 10m --existing --only 5   # N = 1,000,000
    .venv/bin/python -m bench.bench_reminders --participants 100000 --workers 2

Reports the planning time (set-based SQL), end-to-end messages per second (dispatch -> workers
-> fake gateway -> state `sent` committed), and, in the same run with the same workers, the
rate of a no-op Celery task (the ceiling of a one-task-per-message design). A fresh database
(DATABASE_URL, default bench_reminders; never the generated data set: every participant here
is in grace so that N reminders are due), its own Celery queue and Redis key prefix. In the
suite N is 1,000,000 at sizes 1m and 10m and 10,000 at 10k (or with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.request import urlopen

from bench.common import (
    ROOT,
    ensure_database,
    free_port,
)
from bench.harness import celery_worker

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_reminders"

TAG = uuid.uuid4().hex[:8]
os.environ["CELERY_QUEUE"] = f"bench-reminders-{TAG}"
os.environ["CACHE_KEY_PREFIX"] = f"bench-reminders-{TAG}"

PARTICIPANTS_SQL = """
INSERT INTO enrollment_participant
    (nik_digest, nik_encrypted, kpj_number, full_name, birth_date, sex, phone, email, language,
     village_id, province_id, regency_id, address, occupation_id, declared_income, jht, channel,
     consent_data, consent_reminders, created_at, updated_at)
SELECT sha256(g::text::bytea), 'placeholder:' || g, lpad((20000000000 + g)::text, 11, '0'),
       'Pekerja ' || g, DATE '1990-01-01', 'M', '+62812' || lpad(g::text, 8, '0'), '',
       CASE WHEN g %% 10 = 0 THEN 'en' ELSE 'id' END, v.village, v.province, v.regency,
       'Jl. Bench', 'petani', 1000000, (g %% 3 = 0), 'self', true, true, now(), now()
FROM generate_series(1, %(n)s) AS g
CROSS JOIN LATERAL (
    SELECT (ARRAY['32.73.05.1001', '51.71.01.1001', '91.03.01.1001'])[1 + g %% 3] AS village,
           (ARRAY['32', '51', '91'])[1 + g %% 3] AS province,
           (ARRAY['32.73', '51.71', '91.03'])[1 + g %% 3] AS regency
) v
"""
COVERAGE_SQL = """
INSERT INTO contributions_coverage
    (participant_id, status, start_month, paid_through, active_since, lapsed_since,
     continuous_months, reactivations, balance, updated_at)
SELECT p.id, 'grace', %(month)s, NULL, NULL, NULL, 0, 0, 0, now()
FROM enrollment_participant p
"""


def gateway_stats(url: str) -> dict[str, int]:
    with urlopen(f"{url}/_control/stats", timeout=10) as response:  # noqa: S310
        return dict(json.load(response))


def setup(url: str) -> None:
    """A fresh database of its own, migrated, reference data loaded."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    ensure_database(url, fresh=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)


def run(args: argparse.Namespace) -> dict[str, object]:
    """The suite entry (bench/common.py): N from the size, 3 workers, batches of 200."""
    small = args.quick or args.size == "10k"
    n = 10_000 if small else 1_000_000
    ns = argparse.Namespace(participants=n, workers=3, batch=200, noop=2_000 if small else 20_000)
    r = measure(ns)
    ratio = r["messages_per_s"] / r["noop_tasks_per_s"] if r["noop_tasks_per_s"] else 0
    rows = [
        {"measure": f"plan {r['planned']:,} reminders (set-based SQL)", "result":
         f"{r['plan_s']} s ({r['plan_per_s']:,}/s)", "baseline": "", "ratio": ""},
        {"measure": "plan again (idempotent, adds nothing)", "result":
         f"{r['replan_s']} s (+{r['replan_added']})", "baseline": "", "ratio": ""},
        {"measure": f"dispatch + send {r['sent']:,} to the fake gateway, {r['workers']} workers, "
         f"batches of {r['batch']}", "result": f"{r['messages_per_s']:,} messages/s "
         f"({r['end_to_end_s']} s)", "baseline": f"{r['noop_tasks_per_s']:,} no-op tasks/s "
         f"({r['noop_tasks']:,} tasks)", "ratio": f"{ratio:.2f}"},
    ]  # fmt: skip
    return {
        "scenario": "5. Reminder run",
        "rows": rows,
        "notes": (
            "Ratio = messages/s end to end (dispatch -> Celery workers -> fake gateway -> state "
            "`sent` committed) ÷ a no-op Celery task per message through the same broker and "
            f"workers in the same run. Gateway counters: {r['gateway']}. Ambition: >= 2,000/s."
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--noop", type=int, default=20_000, help="no-op tasks for the baseline")
    print(json.dumps(measure(parser.parse_args()), indent=2))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    url = os.environ.get("BENCH_REMINDERS_DATABASE_URL", DEFAULT_URL)
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "REMINDER_GATEWAY_URL": gateway_url,
            "REMINDER_GATEWAY_KEY": "k",
            "REMINDER_RATE_LIMITS": "sms=100000,whatsapp=100000,email=100000",
            "REMINDER_BATCH_SIZE": str(args.batch),
            "REMINDER_DISPATCH_MAX_PER_RUN": str(args.participants * 2),
            "LOG_LEVEL": "WARNING",
        }
    )
    setup(url)
    from django.db import connection
    from django.utils import timezone

    from bench.tasks import noop
    from bpjsportal.celery import app
    from contributions.messaging import reminders
    from contributions.models import Reminder
    from contributions.rates import add_months
    from contributions.tasks import send_reminder_batch

    month = timezone.localdate().replace(day=1)
    plan_day = add_months(month, 1).replace(day=12)
    now = datetime(plan_day.year, plan_day.month, plan_day.day, 5, tzinfo=UTC)  # 12:00 WIB
    with connection.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(PARTICIPANTS_SQL, {"n": args.participants})
        cur.execute(COVERAGE_SQL, {"month": month})
        cur.execute("ANALYZE")
        t_load = time.perf_counter() - t0
    reminders.seed_reminder_rules()

    t0 = time.perf_counter()
    planned = reminders.plan_reminders(day=plan_day).total
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    replanned = reminders.plan_reminders(day=plan_day).total
    t_replan = time.perf_counter() - t0

    gateway = subprocess.Popen(
        [
            *(sys.executable, "-m", "contributions.messaging.fake_gateway"),
            *("--port", str(port), "--key", "k", "--count-only"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        with celery_worker(url, queue=os.environ["CELERY_QUEUE"], concurrency=args.workers):
            # --- end to end: dispatch -> workers -> gateway -> committed `sent`
            t0 = time.perf_counter()
            dispatched = reminders.dispatch_due_reminders(
                enqueue=lambda ids: send_reminder_batch.delay(ids, now.isoformat()), now=now
            )
            t_dispatch = time.perf_counter() - t0
            while Reminder.objects.filter(state="queued").exists():
                time.sleep(0.5)
            t_send = time.perf_counter() - t0
            sent = Reminder.objects.filter(state="sent").count()
            stats = gateway_stats(gateway_url)

            # --- baseline: no-op tasks through the same broker and workers
            t0 = time.perf_counter()
            results = [noop.delay([i], None) for i in range(args.noop)]
            results[-1].get(timeout=600)
            for r in results[:: max(1, args.noop // 100)]:
                r.get(timeout=600)
            t_noop = time.perf_counter() - t0
    finally:
        gateway.terminate()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(os.environ["CELERY_QUEUE"])

    from bench.common import machine
    from bench.common import now as stamp

    return {
        "when": stamp(),
        "machine": machine(),
        "participants": args.participants,
        "workers": args.workers,
        "batch": args.batch,
        "load_s": round(t_load, 1),
        "planned": planned,
        "plan_s": round(t_plan, 2),
        "plan_per_s": round(planned / t_plan),
        "replan_added": replanned,
        "replan_s": round(t_replan, 2),
        "dispatched": dispatched,
        "dispatch_s": round(t_dispatch, 2),
        "sent": sent,
        "gateway": stats,
        "end_to_end_s": round(t_send, 1),
        "messages_per_s": round(sent / t_send),
        "noop_tasks": args.noop,
        "noop_s": round(t_noop, 1),
        "noop_tasks_per_s": round(args.noop / t_noop),
    }


if __name__ == "__main__":
    main()
