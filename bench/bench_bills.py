"""Scenario 8: channels paying bills - 32 payment-channel clients post signed notifications for
distinct bills at once, vs a bare Django view doing one payment INSERT.

Each client is a channel API client of its own with its own signing secret, driven by
contributions/fake_channel.Channel (the demo's channel: it signs as docs/api.md says and keeps
its own record of every notification and answer). The notification path is the whole thing:
token, signature, bill row lock, quote, payment, ledger entry, coverage, the notification
record, the receipt queued. The bare view (bench/bare_urls.py) is JSON in, one INSERT into the
payments table, JSON out. Both are served by one gunicorn (DEBUG off). Afterwards every answer
in the channels' records is checked against the database: each applied notification is exactly
one payment with its reference and amount, none lost, none twice.

    .venv/bin/python -m bench.bench_bills --clients 32 --requests 960

Its own database `replica_bench_bills`, dropped and recreated each run.
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

DB = "replica_bench_bills"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=32, help="channel clients posting at once")
    p.add_argument("--requests", type=int, default=960, help="notifications (and bare INSERTs)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    p.add_argument("--seed", type=int, default=41)
    p.add_argument("--quick", action="store_true", help="smoke run: 192 requests")
    return p


def _participants(base: str, token: str, n: int, seed: int) -> list[int]:
    with client(base, token) as http:
        ids = []
        for row in participant_rows(n, seed=seed):
            r = http.post("/api/v1/participants/", json=row)
            if r.status_code != 201:
                raise RuntimeError(f"registration refused: {r.status_code} {r.text[:200]}")
            ids.append(int(r.json()["id"]))
    return ids


def _bills(participant_ids: list[int]) -> list[tuple[str, int]]:
    """One bill per participant (1 to 12 months): paying one bill moves the participant's first
    unpaid month, so a second bill of the same participant would go to suspense."""
    from contributions.bills import open_bill
    from enrollment.models import Participant

    out: list[tuple[str, int]] = []
    people = Participant.objects.filter(pk__in=participant_ids).select_related("occupation")
    for i, p in enumerate(people.order_by("pk")):
        bill, _new = open_bill(participant=p, months=1 + i % 12)
        out.append((bill.code, bill.amount))
    return out


def _channels(base: str, n: int) -> list[Any]:
    from contributions.fake_channel import Channel
    from enrollment.api.clients import create_api_client
    from enrollment.api.signing import signing_secret

    out = []
    for i in range(n):
        issued = create_api_client(name=f"bench bank {i}", scope="channel", payment_channel="bank")
        secret = signing_secret(issued.client)
        channel = Channel(f"{base}/api/v1", issued.token, secret, prefix=f"BENCH{i:02d}")
        channel.client_id = issued.client.pk  # type: ignore[attr-defined]
        out.append(channel)
    return out


def _notify(channels: list[Any], bills: list[tuple[str, int]]) -> dict[str, Any]:
    lock = threading.Lock()
    queue = list(bills)

    def work(i: int) -> list[float]:
        out: list[float] = []
        while True:
            with lock:
                if not queue:
                    return out
                code, amount = queue.pop()
            t = time.perf_counter()
            channels[i].pay(code, amount)
            out.append(time.perf_counter() - t)

    latencies, wall, errors = run_clients(len(channels), work)
    return {"rps": len(latencies) / wall, **summary(latencies), "exceptions": errors}


def _bare(base: str, n_clients: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    lock = threading.Lock()
    queue = list(rows)
    failures: list[str] = []

    def work(_i: int) -> list[float]:
        out: list[float] = []
        with client(base) as http:
            while True:
                with lock:
                    if not queue:
                        return out
                    row = queue.pop()
                t = time.perf_counter()
                r = http.post("/bench/bare/payment/", json=row)
                out.append(time.perf_counter() - t)
                if r.status_code != 201:
                    with lock:
                        failures.append(f"{r.status_code} {r.text[:200]}")

    latencies, wall, errors = run_clients(n_clients, work)
    errors_n = len(failures) + len(errors)
    return {"rps": len(latencies) / wall, **summary(latencies), "errors": errors_n}


def _check(channels: list[Any]) -> dict[str, int]:
    """The channels' own records against the payments table: lost, duplicated, wrong amount."""
    from contributions.models import Payment
    from contributions.services import payment_reference

    # a payment's reference is the channel's, scoped to its client (services.payment_reference)
    sent = [
        {**entry, "reference": payment_reference(ch.client_id, entry["reference"])}
        for ch in channels
        for entry in ch.record
    ]
    applied = {e["reference"]: e for e in sent if e["status"] == 201}
    stored = dict(
        Payment.objects.filter(channel="bank").values_list("reference", "amount").iterator()
    )
    return {
        "sent": len(sent),
        "applied": len(applied),
        "suspense": sum(1 for e in sent if e["status"] == 202),
        "refused": sum(1 for e in sent if e["status"] not in (200, 201, 202)),
        "lost": sum(1 for ref in applied if ref not in stored),
        "extra": sum(1 for ref in stored if ref not in applied),
        "wrong_amount": sum(
            1 for ref, e in applied.items() if stored.get(ref, e["amount"]) != e["amount"]
        ),
    }


def run(args: Any = None) -> dict[str, Any]:
    args = with_defaults(parser(), args)
    load_before = load()
    if args.quick:
        args.requests = min(args.requests, 192)
    url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    ensure_database(url, fresh=True)
    prepare_django(url)
    token = partner_token("bench-bills", "BENCHB")
    with gunicorn(url, workers=args.workers, settings="bench.bench_settings") as base:
        people = _participants(base, token, args.requests + 64, args.seed)
        bills = _bills(people)
        warm, bills = bills[:64], bills[64:]
        channels = _channels(base, args.clients)
        _notify(channels[: args.workers * 2], warm)  # every worker connected and warm
        bare_rows = [
            {"participant": people[i % len(people)], "amount": 16_800, "reference": f"BARE-{i}"}
            for i in range(args.requests + 64)
        ]
        _bare(base, args.workers * 2, bare_rows[:64])
        api = _notify(channels, bills)
        bare = _bare(base, args.clients, bare_rows[64:])
    check = _check(channels)
    ratio = api["rps"] / bare["rps"] if bare["rps"] else float("nan")
    rows = [
        {
            "clients": args.clients,
            "notifications": f"{len(bills):,}",
            "signed notifications req/s": f"{api['rps']:,.1f}",
            "p50 / p99": f"{api['p50_ms']:,.0f} / {api['p99_ms']:,.0f} ms",
            "bare INSERT view req/s (baseline)": f"{bare['rps']:,.1f}",
            "bare p50 / p99": f"{bare['p50_ms']:,.0f} / {bare['p99_ms']:,.0f} ms",
            "ratio": f"{ratio:.3f}",
            "lost / duplicated / wrong amount": (
                f"{check['lost']} / {check['extra']} / {check['wrong_amount']}"
            ),
        }
    ]
    notes = [
        f"{now()}; {machine()}; load average {load_before} -> {load()}.",
        "Ratio = notifications req/s / bare req/s (target >= 0.30); p99 target < 300 ms.",
        f"gunicorn {args.workers} sync workers (DEBUG off); {args.clients} channel API clients, "
        "each a thread with its own token, signing secret and httpx client "
        "(contributions.fake_channel.Channel), all on this machine.",
        f"Checked against the channels' own records: {check['sent']:,} sent, "
        f"{check['applied']:,} applied (201), {check['suspense']} to suspense (202), "
        f"{check['refused']} refused, {check['lost']} lost, "
        f"{check['extra']} payments no channel recorded, {check['wrong_amount']} wrong amounts.",
    ]
    if api["exceptions"] or bare["errors"]:
        notes.append(f"ERRORS: {len(api['exceptions'])} channel exceptions, {bare['errors']} bare")
    return {
        "scenario": "8. Channels paying bills: signed notifications vs a bare payment INSERT",
        "rows": rows,
        "notes": " ".join(notes),
    }


def main() -> None:
    print_result(run(parser().parse_args()))


if __name__ == "__main__":
    main()
