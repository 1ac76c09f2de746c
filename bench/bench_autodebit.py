"""Scenario 9, the autodebit run: N active mandates charged end to end through real Celery
workers and the fake channel's HTTP charge API, vs a no-op Celery task per mandate.

    .venv/bin/python -m bench.bench_autodebit --mandates 100000 --workers 3

End to end = the planning (one set-based INSERT of N charges, batches queued through the
outbox) -> the outbox relay (this process plays the beat's relay) -> workers lock each batch,
fix the amounts (quote), ask the channel once per batch (signed), post the debits together
(payments, ledger entries, coverage rows, receipts queued) -> every charge `paid` committed.
Then checked: the channel debited each key once, one payment per charge with the key as its
reference, every participant active. The baseline, in the same run with the same workers: a
no-op Celery task per mandate (the ceiling of a one-task-per-charge design), as scenario 5.
A fresh database (BENCH_AUTODEBIT_DATABASE_URL, default bench_autodebit), its own Celery queue
and Redis key prefix; the receipts go to a count-only fake gateway.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from bench import bench_reminders  # sets its own queue names on import: ours follow
from bench.common import ROOT, free_port
from bench.harness import celery_worker

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_autodebit"
TAG = uuid.uuid4().hex[:8]
os.environ["CELERY_QUEUE"] = f"bench-autodebit-{TAG}"
os.environ["CACHE_KEY_PREFIX"] = f"bench-autodebit-{TAG}"

MANDATES_SQL = """
INSERT INTO contributions_autodebitmandate
    (participant_id, client_id, account, status, set_up_by, agent_id, created_at,
     cancelled_at, cancelled_by, cancel_reason)
SELECT p.id, %(client)s, '62812' || lpad(p.id::text, 8, '0'), 'active', 'participant', NULL,
       now(), NULL, '', ''
FROM enrollment_participant p
"""


def _get(url: str) -> dict[str, Any]:
    with urlopen(url, timeout=60) as response:  # noqa: S310 - the local fake
        return dict(json.load(response))


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("a fake service did not start")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from bench.bench_reminders import COVERAGE_SQL, PARTICIPANTS_SQL, setup

    assert bench_reminders.TAG  # imported above, before this module names its queue
    url = os.environ.get("BENCH_AUTODEBIT_DATABASE_URL", DEFAULT_URL)
    channel_port, gateway_port = free_port(), free_port()
    os.environ.update(
        {
            "AUTODEBIT_DAYS_BEFORE": "31",  # any day of the month is a charging day here
            "AUTODEBIT_BATCH": str(args.batch),
            "REMINDER_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
            "REMINDER_GATEWAY_KEY": "k",
            "REMINDER_RATE_LIMITS": "sms=100000,whatsapp=100000,email=100000",
            "REMINDER_SEND_FROM_HOUR": "0",
            "REMINDER_SEND_UNTIL_HOUR": "24",
            "LOG_LEVEL": "WARNING",
        }
    )
    setup(url)
    from django.db import connection
    from django.utils import timezone

    from bench.tasks import noop
    from bpjsportal.celery import app
    from contributions import autodebit
    from contributions.messaging import outbox
    from contributions.models import (
        AutodebitCharge,
        Coverage,
        OutboxMessage,
        Payment,
        Reminder,
    )
    from enrollment.api.clients import create_api_client
    from enrollment.api.signing import signing_secret
    from enrollment.models import ApiClient

    issued = create_api_client(name="Bench wallet", scope="channel", payment_channel="ewallet")
    ApiClient.objects.filter(pk=issued.client.pk).update(
        autodebit_url=f"http://127.0.0.1:{channel_port}"
    )
    day = timezone.localdate()
    with connection.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(PARTICIPANTS_SQL, {"n": args.mandates})
        cur.execute(COVERAGE_SQL, {"month": day.replace(day=1)})
        cur.execute(MANDATES_SQL, {"client": issued.client.pk})
        cur.execute("ANALYZE")
        t_load = time.perf_counter() - t0

    credentials = Path(tempfile.mkdtemp()) / "channel.json"
    credentials.write_text(
        json.dumps({"token": issued.token, "secret": signing_secret(issued.client)})
    )
    channel = subprocess.Popen(
        [
            *(sys.executable, "-m", "contributions.fake_channel", "--port", str(channel_port)),
            *("--api", "http://127.0.0.1:9/unused", "--credentials", str(credentials)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    gateway = subprocess.Popen(
        [
            *(sys.executable, "-m", "contributions.messaging.fake_gateway"),
            *("--port", str(gateway_port), "--key", "k", "--count-only"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(channel_port, channel)
        _wait_port(gateway_port, gateway)
        with celery_worker(url, queue=os.environ["CELERY_QUEUE"], concurrency=args.workers):
            # --- end to end: plan -> relay -> workers -> channel -> payments committed
            t0 = time.perf_counter()
            planned = autodebit.plan(day=day)
            t_plan = time.perf_counter() - t0
            replanned = autodebit.plan(day=day)  # a duplicated beat: no charge added
            t_replan = time.perf_counter() - t0 - t_plan
            open_states = ("pending", "retry")
            while True:
                outbox.relay()
                if not AutodebitCharge.objects.filter(state__in=open_states).exists():
                    break
                time.sleep(0.2)
            t_end = time.perf_counter() - t0
            states = dict(
                AutodebitCharge.objects.values_list("state").annotate(n=_count()).order_by()
            )
            # the receipts (queued with the payments) are sent before the baseline starts
            t1 = time.perf_counter()
            while Reminder.objects.filter(state="queued").exists():
                outbox.relay()
                time.sleep(0.2)
            t_receipts = time.perf_counter() - t1
            receipts = Reminder.objects.filter(kind="payment_receipt", state="sent").count()
            # --- baseline: a no-op task per mandate, same broker and workers
            t0 = time.perf_counter()
            results = [noop.delay([i], None) for i in range(args.noop)]
            results[-1].get(timeout=900)
            for r in results[:: max(1, args.noop // 100)]:
                r.get(timeout=900)
            t_noop = time.perf_counter() - t0
        debits = _get(f"http://127.0.0.1:{channel_port}/_control/charges")
    finally:
        channel.terminate()
        gateway.terminate()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(os.environ["CELERY_QUEUE"])
    keys = set(AutodebitCharge.objects.values_list("key", flat=True))
    references = list(Payment.objects.values_list("reference", flat=True))
    asked: dict[str, int] = {}
    for request in debits["requests"]:
        asked[request["key"]] = asked.get(request["key"], 0) + 1
    from bench.common import machine
    from bench.common import now as stamp

    paid = states.get("paid", 0)
    return {
        "when": stamp(),
        "machine": machine(),
        "mandates": args.mandates,
        "workers": args.workers,
        "batch": args.batch,
        "load_s": round(t_load, 1),
        "planned": planned.created,
        "batches": planned.batches,
        "plan_s": round(t_plan, 2),
        "replan_added": replanned.created,
        "replan_s": round(t_replan, 2),
        "states": states,
        "end_to_end_s": round(t_end, 1),
        "charges_per_s": round(paid / t_end),
        "receipts_sent": receipts,
        "receipts_after_s": round(t_receipts, 1),
        "noop_tasks": args.noop,
        "noop_s": round(t_noop, 1),
        "noop_tasks_per_s": round(args.noop / t_noop),
        "channel_debits": len(debits["debits"]),
        "debited_twice": len(keys) - len(set(debits["debits"]) & keys),
        "asked_more_than_once": sum(1 for n in asked.values() if n > 1),
        "payments": len(references),
        "payments_match_keys": sorted(references) == sorted(keys),
        "not_active": Coverage.objects.exclude(status="active").count(),
        "outbox_left": OutboxMessage.objects.filter(published_at__isnull=True).count(),
    }


def _count() -> Any:
    from django.db.models import Count

    return Count("id")


def run(args: argparse.Namespace) -> dict[str, object]:
    """The suite entry (bench/common.py): 100,000 mandates (10,000 at 10k or --quick)."""
    small = args.quick or args.size == "10k"
    ns = argparse.Namespace(
        mandates=10_000 if small else 100_000, workers=3, batch=200, noop=2_000 if small else 20_000
    )
    r = measure(ns)
    ratio = r["charges_per_s"] / r["noop_tasks_per_s"] if r["noop_tasks_per_s"] else 0
    rows = [
        {"measure": f"plan {r['planned']:,} charges (set-based SQL), {r['batches']} batches queued",
         "result": f"{r['plan_s']} s", "baseline": "", "ratio": ""},
        {"measure": "plan again (a duplicated beat)", "result":
         f"{r['replan_s']} s (+{r['replan_added']} charges)", "baseline": "", "ratio": ""},
        {"measure": f"charge {r['mandates']:,} mandates end to end, {r['workers']} workers, "
         f"batches of {r['batch']}", "result": f"{r['charges_per_s']:,} charges/s "
         f"({r['end_to_end_s']} s)", "baseline": f"{r['noop_tasks_per_s']:,} no-op tasks/s "
         f"({r['noop_tasks']:,} tasks)", "ratio": f"{ratio:.2f}"},
    ]  # fmt: skip
    return {
        "scenario": "9. Autodebit run",
        "rows": rows,
        "notes": (
            "Ratio = charges/s end to end (plan -> outbox relay -> Celery workers -> the fake "
            "channel's signed batch charge API -> payments, ledger, coverage, receipts "
            "committed) ÷ a no-op Celery task per mandate through the same broker and workers "
            f"in the same run (target >= 2). Charge states {r['states']}; the channel debited "
            f"{r['channel_debits']:,} keys, {r['debited_twice']} twice; {r['payments']:,} "
            f"payments, references = the charge keys: {r['payments_match_keys']}; "
            f"participants not active afterwards: {r['not_active']}; receipts sent to the fake "
            f"gateway {r['receipts_sent']:,} (the last {r['receipts_after_s']} s after the "
            "charges, before the baseline)."
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mandates", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=3, help="worker processes (prefork)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--noop", type=int, default=20_000, help="no-op tasks for the baseline")
    print(json.dumps(measure(parser.parse_args()), indent=2, default=str))


if __name__ == "__main__":
    main()
