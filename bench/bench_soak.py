"""Scenario 7: a mixed soak. Registrations, payments, dashboard reads and incremental sync run
at once, each at a steady request rate, for --duration seconds (default 10 minutes). Before it,
each workload runs alone for --isolated seconds in the same run: its isolated p95 is the
baseline. Pass: every workload's p95 in the mix is at most 2x its isolated p95, no request
failed, and nothing was lost (checked in the database at the end: every registration answered
201 is stored, every payment answered 201 is stored with its ledger entries, and the sync
client saw every participant registered during the run).

    .venv/bin/python -m bench.bench_soak --duration 60 --isolated 15      # a short smoke
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench10m \\
        .venv/bin/python -m bench.bench_soak                            # 10 minutes

Writes only new rows (participants, their coverage, payments, ledger entries, one API client
per token): payments go to participants this run registered. Database: BENCH_DATABASE_URL or
`replica_bench_soak` (created if missing, kept between runs).
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.common import machine, now, participant_rows
from bench.harness import (
    admin_token,
    client,
    database_url,
    gunicorn,
    load,
    partner_token,
    prepare_django,
    print_result,
    summary,
    with_defaults,
)

DB = "replica_bench_soak"
WORKLOADS = ("registrations", "payments", "dashboard", "sync")
JAKARTA = ZoneInfo("Asia/Jakarta")  # the portal's zone (TIME_ZONE)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds of the mixed soak")
    p.add_argument("--isolated", type=float, default=60, help="seconds of each workload alone")
    p.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="2-4 of: " + ", ".join(WORKLOADS)
    )
    p.add_argument("--reg-rate", type=float, default=4, help="registrations per second")
    p.add_argument("--pay-rate", type=float, default=4, help="payments per second")
    p.add_argument("--dash-rate", type=float, default=2, help="progress API reads per second")
    p.add_argument("--sync-rate", type=float, default=1, help="sync pages per second")
    p.add_argument(
        "--sync-replay", type=int, default=20_000, help="changes the sync client replays"
    )
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    p.add_argument("--seed", type=int, default=71)
    p.add_argument(
        "--database-url",
        help="an existing data set (bench/run.py passes it); default BENCH_DATABASE_URL or a "
        "database of our own",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 60 s mix, 15 s alone")
    return p


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class Shared:
    """What the workloads hand each other and the final checks: all appends under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[dict[str, Any]] = field(default_factory=list)
    registered: list[int] = field(default_factory=list)  # participant ids answered 201
    pool: list[str] = field(default_factory=list)  # KPJs the payments workload pays for
    counter: itertools.count[int] = field(default_factory=itertools.count)
    references: list[str] = field(default_factory=list)  # payments answered 201
    synced: set[int] = field(default_factory=set)
    sync_token: str = ""  # the sync workload's position
    replay_token: str = ""  # where it starts again once caught up (same work alone and in mix)
    check_token: str = ""  # the final check's position: the newest change at set-up
    # the k-th payment of a pool participant pays its k-th month: the price of each (a discount
    # that ends at a year's end changes it; BPU_RULES.md, PP 50/2025)
    amounts: list[int] = field(default_factory=list)


def _paced(rate: float, clients: int, deadline: float, step: Callable[[], None]) -> None:
    """Call step() every clients/rate seconds until the deadline (open loop: a slow answer
    does not postpone the next start beyond catching up)."""
    interval = clients / rate
    next_at = time.perf_counter()
    while next_at < deadline:
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        step()
        next_at += interval


def _phase(
    base: str, tokens: dict[str, str], names: list[str], seconds: float, s: Shared, args: Any
) -> dict[str, Outcome]:
    outcomes = {name: Outcome() for name in names}
    deadline = time.perf_counter() + seconds
    year = datetime.now(JAKARTA).year  # the portal's year (the API reads it in Asia/Jakarta)
    run_id = uuid.uuid4().hex[:8]

    def timed(name: str, call: Callable[[], httpx.Response], ok: int) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            response = call()
        except httpx.HTTPError as exc:
            outcomes[name].failures.append(repr(exc))
            return None
        with s.lock:
            outcomes[name].latencies.append(time.perf_counter() - t)
        if response.status_code != ok:
            with s.lock:
                outcomes[name].failures.append(f"{response.status_code} {response.text[:200]}")
            return None
        return response

    def registrations(http: httpx.Client) -> None:
        with s.lock:
            row = s.rows.pop()
        response = timed("registrations", lambda: http.post("/api/v1/participants/", json=row), 201)
        if response is not None:
            body = response.json()
            with s.lock:
                s.registered.append(body["id"])

    def payments(http: httpx.Client) -> None:
        n = next(s.counter)
        body = {
            "kpj_number": s.pool[n % len(s.pool)],
            "amount": s.amounts[min(n // len(s.pool), len(s.amounts) - 1)],
            "months": 1,
            "reference": f"SOAK-{run_id}-{n}",
            "paid_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "payer": "participant",
        }
        if timed("payments", lambda: http.post("/api/v1/payments/", json=body), 201) is not None:
            with s.lock:
                s.references.append(body["reference"])

    def dashboard(http: httpx.Client) -> None:
        timed(
            "dashboard", lambda: http.get("/api/v1/reports/progress/", params={"year": year}), 200
        )

    def sync(http: httpx.Client) -> None:
        params = {"since": s.sync_token, "page_size": 500}
        response = timed("sync", lambda: http.get("/api/v1/sync/participants/", params=params), 200)
        if response is not None:
            body = response.json()
            # Caught up: start the replay again, so every request reads a full page.
            s.sync_token = body["next_token"] if body["has_more"] else s.replay_token

    plan: dict[str, tuple[Callable[[httpx.Client], None], float, int, str]] = {
        "registrations": (registrations, args.reg_rate, 4, "partner"),
        "payments": (payments, args.pay_rate, 4, "channel"),
        "dashboard": (dashboard, args.dash_rate, 2, "admin"),
        "sync": (sync, args.sync_rate, 1, "admin"),  # one client: its token is sequential
    }

    def client_thread(name: str) -> None:
        step, rate, clients, scope = plan[name]
        with client(base, tokens[scope]) as http:
            _paced(rate, clients, deadline, lambda: step(http))

    threads = [
        threading.Thread(target=client_thread, args=(name,), daemon=True)
        for name in names
        for _ in range(plan[name][2])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _setup(args: Any, s: Shared, phases_seconds: float) -> dict[str, str]:
    from django.utils import timezone

    from bpjsportal.core.api.sync import Position, encode_token, sync_horizon
    from contributions.quotes import quote_payment
    from enrollment.api.clients import create_api_client
    from enrollment.models import Participant, niks_q
    from enrollment.services import register_participant

    tokens = {
        "partner": partner_token("bench-soak", "BENCHSOAK"),
        "admin": admin_token("bench-soak-admin"),
        "channel": create_api_client(
            name="bench-soak-bank", scope="channel", payment_channel="bank"
        ).token,
    }
    reg_total = int(args.reg_rate * phases_seconds * 1.2) + 50
    pool_size = int(args.pay_rate * phases_seconds / 3) + 20  # at most ~3 months paid each
    rows = participant_rows(reg_total + pool_size, seed=args.seed + int(time.time()))
    pool_rows, s.rows = rows[:pool_size], rows[pool_size:]
    existing = {p.nik for p in Participant.objects.filter(niks_q([r["nik"] for r in rows]))}
    s.rows = [r for r in s.rows if r["nik"] not in existing]
    for r in pool_rows:
        if r["nik"] in existing:
            continue
        p = register_participant(
            nik=r["nik"], full_name=r["full_name"], birth_date=date.fromisoformat(r["birth_date"]),
            sex=r["sex"], phone=r["phone"], village=r["village"], address=r["address"],
            occupation=r["occupation"], declared_income=r["declared_income"], channel="partner",
            consent_data=True,
        )  # fmt: skip
        s.pool.append(p.kpj_number)
    first = Participant.objects.select_related("occupation").get(kpj_number=s.pool[0])
    today = timezone.localdate()
    totals = [0] + [quote_payment(first, None, months=k, as_of=today).amount for k in range(1, 7)]
    s.amounts = [totals[k] - totals[k - 1] for k in range(1, 7)]
    # The sync workload replays the last --sync-replay changes in 500-row pages, over and over
    # (a partner catching up); the final check starts at the newest change and must then see
    # every participant registered during the run.
    from django.db import connection

    horizon = sync_horizon()
    with connection.cursor() as cur:
        for attr, offset in (("check_token", 0), ("replay_token", args.sync_replay)):
            cur.execute(
                "SELECT sync_txid, id FROM enrollment_participant WHERE sync_txid < %s "
                "ORDER BY sync_txid DESC, id DESC OFFSET %s LIMIT 1",
                [horizon, offset],
            )
            txid, pk = cur.fetchone() or (0, 0)
            setattr(s, attr, encode_token("participants", Position(txid, pk)))
    s.sync_token = s.replay_token
    return tokens


def _final_checks(base: str, token: str, s: Shared) -> list[str]:
    from contributions.models import LedgerEntry, Payment
    from enrollment.models import Participant

    problems = []
    # Catch the sync client up with everything written.
    with client(base, token) as http:
        for _ in range(10_000):
            body = http.get(
                "/api/v1/sync/participants/", params={"since": s.check_token, "page_size": 1000}
            ).json()
            s.synced.update(r["id"] for r in body["results"])
            s.check_token = body["next_token"]
            if not body["has_more"]:
                break
    stored = Participant.objects.filter(pk__in=s.registered).count()
    if stored != len(s.registered):
        problems.append(f"registrations: {len(s.registered) - stored} answered 201 but missing")
    paid = Payment.objects.filter(reference__in=s.references).count()
    if paid != len(s.references):
        problems.append(f"payments: {len(s.references) - paid} answered 201 but missing")
    entries = (
        LedgerEntry.objects.filter(payment__reference__in=s.references)
        .values("payment_id")
        .distinct()
        .count()
    )
    if entries != len(s.references):
        problems.append(f"payments: {len(s.references) - entries} without a ledger entry")
    unseen = set(s.registered) - s.synced
    if unseen:
        problems.append(f"sync: {len(unseen)} new participants never synced")
    return problems


def run(args: Any = None) -> dict[str, Any]:
    args = with_defaults(parser(), args)
    load_before = load()
    if args.quick:
        args.duration, args.isolated = min(args.duration, 60), min(args.isolated, 15)
    names = [n.strip() for n in str(args.workloads).split(",") if n.strip()]
    if not 2 <= len(names) <= 4 or set(names) - set(WORKLOADS):
        raise SystemExit(f"--workloads: 2-4 of {', '.join(WORKLOADS)}")
    url = args.database_url or database_url(DB)
    prepare_django(url)
    s = Shared()
    tokens = _setup(args, s, args.duration + args.isolated * len(names))
    isolated: dict[str, Outcome] = {}
    with gunicorn(url, workers=args.workers) as base:
        _phase(base, tokens, names, 3, s, args)  # warm-up, not counted
        for name in names:
            isolated[name] = _phase(base, tokens, [name], args.isolated, s, args)[name]
        mixed = _phase(base, tokens, names, args.duration, s, args)
        problems = _final_checks(base, tokens["admin"], s)

    rows = []
    verdicts = []
    for name in names:
        alone, together = summary(isolated[name].latencies), summary(mixed[name].latencies)
        ratio = together["p95_ms"] / alone["p95_ms"] if alone["p95_ms"] else float("inf")
        errors = len(isolated[name].failures) + len(mixed[name].failures)
        ok = ratio <= 2 and errors == 0
        verdicts.append(ok)
        rows.append(
            {
                "workload": name,
                "requests alone / in mix": (
                    f"{len(isolated[name].latencies):,} / {len(mixed[name].latencies):,}"
                ),
                "p95 alone (baseline)": f"{alone['p95_ms']:,.0f} ms",
                "p50 / p95 in mix": f"{together['p50_ms']:,.0f} / {together['p95_ms']:,.0f} ms",
                "ratio": f"{ratio:.2f}",
                "errors": str(errors),
                "pass (ratio <= 2, no errors)": "yes" if ok else "NO",
            }
        )
        for failure in (isolated[name].failures + mixed[name].failures)[:2]:
            problems.append(f"{name}: {failure}")
    passed = all(verdicts) and not problems
    db_name = url.rsplit("/", 1)[-1]
    return {
        "scenario": "7. Mixed soak: " + ", ".join(names),
        "rows": rows,
        "notes": (
            f"{now()}; {machine()}; load average {load_before} -> {load()}. "
            f"Ratio = p95 in the mix / p95 alone. Database {db_name}; "
            f"gunicorn {args.workers} sync workers "
            f"(DEBUG off). Mix for {args.duration:.0f} s after {args.isolated:.0f} s of each "
            f"workload alone; target rates/s: registrations {args.reg_rate}, payments "
            f"{args.pay_rate}, progress API {args.dash_rate}, sync pages {args.sync_rate} "
            f"(500 rows, replaying the last {args.sync_replay:,} changes). "
            f"Checked at the end: {len(s.registered):,} registrations and "
            f"{len(s.references):,} payments answered 201"
            + (
                ". PROBLEMS: " + "; ".join(problems) + "."
                if problems
                else ", all stored, with their ledger entries, and every new participant "
                "reached the sync client: nothing lost."
            )
            + f" Overall: {'PASS' if passed else 'FAIL'}."
        ),
    }


def main() -> None:
    print_result(run(parser().parse_args()))


if __name__ == "__main__":
    main()
