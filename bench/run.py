"""The benchmark suite in one command: generate (or reuse) the data set at a size, run every
scenario against it, each with its baseline measured in the same run, and write the results
tables into docs/benchmarks.md (between the markers of that size; the hand-written sections
stay as they are).

    .venv/bin/python -m bench --size 10k              # generate bench10k, run all, write
    .venv/bin/python -m bench --size 10k --regenerate # the same when bench10k exists
    .venv/bin/python -m bench --size 10m --existing   # reuse the loaded bench10m
    .venv/bin/python -m bench --size 1m --only 2,4 --no-write

Scenarios (module in bench/, `def run(args) -> dict`; the interface is in bench/common.py):
  1 bench_import      participant import: bulk API path vs psql \\copy of the same rows
  2 bench_payments    payment posting: single API requests and sponsor batches vs plain INSERTs
  3 bench_concurrency registration API under concurrency vs a bare Django view
  4 bench_dashboard   dashboard requests p50/p95 vs the naive GROUP BY over the raw tables
  5 bench_reminders   reminder run: plan and send through Celery to the fake gateway vs no-op
  6 bench_sync        incremental sync of changed rows
  7 bench_soak        mixed soak, each load's p95 vs its isolated p95
  8 bench_bills       32 channels paying bills (signed notifications) vs a bare payment INSERT
  9 bench_autodebit   autodebit run: charge N mandates through Celery and the fake channel vs no-op
 10 bench_field       the field app on a throttled network: form usable, first visit and cached
A module that is not there is reported as "not present"; a scenario that fails is reported with
its error and the run goes on. Each scenario runs in a child process of its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import SIZES, dataset_url, machine, now

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = [
    (1, "bench_import", "Participant import"),
    (2, "bench_payments", "Payment posting"),
    (3, "bench_concurrency", "Registration API under concurrency"),
    (4, "bench_dashboard", "Dashboard"),
    (5, "bench_reminders", "Reminder run"),
    (6, "bench_sync", "Incremental sync"),
    (7, "bench_soak", "Mixed soak"),
    (8, "bench_bills", "Channels paying bills"),
    (9, "bench_autodebit", "Autodebit run"),
    (10, "bench_field", "Field app on a slow network"),
    (11, "bench_commissions", "Commission month"),
    (12, "bench_cohorts", "Cohort retention"),
    (13, "bench_cluster", "Writes on a Citus cluster"),
]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results"  # the latest result of every scenario, per size
RESULTS_HEADING = "## Results (written by `bench/run.py`)"


def _child(module: str, args_file: str, result_file: str) -> None:
    """Run one scenario module in this (child) process and write its result as JSON."""
    with open(args_file) as f:
        args = argparse.Namespace(**json.load(f))
    mod = importlib.import_module(f"bench.{module}")
    result = mod.run(args)
    for key in ("scenario", "rows", "notes"):
        if key not in result:
            raise TypeError(f"bench.{module}.run() returned no {key!r}")
    with open(result_file, "w") as f:
        json.dump(result, f, default=str)


def _run_scenario(number: int, module: str, title: str, args: dict[str, Any]) -> dict[str, Any]:
    name = f"{number}. {title}"
    if not (ROOT / "bench" / f"{module}.py").exists():
        return {"scenario": name, "rows": [], "notes": f"not present (bench/{module}.py)"}
    with tempfile.TemporaryDirectory() as tmp:
        args_file, result_file = f"{tmp}/args.json", f"{tmp}/result.json"
        with open(args_file, "w") as f:
            json.dump(args, f)
        started = time.monotonic()
        print(f"--- {name} (bench/{module}.py)", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.run", "--child", module, args_file, result_file],
            cwd=ROOT,
            check=False,
        )
        elapsed = time.monotonic() - started
        if proc.returncode != 0 or not os.path.exists(result_file):
            return {
                "scenario": name,
                "rows": [],
                "notes": f"FAILED (exit {proc.returncode} after {elapsed:.0f} s; see the log)",
            }
        with open(result_file) as f:
            result: dict[str, Any] = json.load(f)
    result["scenario"] = name if not str(result["scenario"])[:1].isdigit() else result["scenario"]
    result["seconds"] = round(elapsed, 1)
    print(f"--- {name}: {elapsed:.0f} s", flush=True)
    return result


def _has_participants(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute(
                "SELECT to_regclass('enrollment_participant') IS NOT NULL"
            ).fetchone()
            if not row or not row[0]:
                return False
            return conn.execute("SELECT EXISTS (SELECT 1 FROM enrollment_participant)").fetchone()[
                0
            ]  # type: ignore[index,no-any-return]
    except psycopg.OperationalError:  # no such database
        return False


def dataset_facts(url: str) -> dict[str, Any]:
    """Row counts (planner estimates after ANALYZE, exact for small tables), size, server."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        counts = {}
        for table in (
            "enrollment_participant",
            "contributions_payment",
            "contributions_ledgerentry",
            "contributions_sponsorbatch",
            "contributions_reminder",
        ):
            est = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table]
            ).fetchone()
            n = int(est[0]) if est else 0
            if n < 2_000_000:
                n = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            counts[table] = n
    return {"server": version, "bytes": size, "counts": counts}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(size: str, command: str, facts: dict[str, Any], results: list[dict[str, Any]]) -> str:
    c = facts["counts"]
    lines = [
        f"### {size} — last: `{command}`, {now()}",
        "",
        f"Machine: {machine()}, {platform.system()}; PostgreSQL {facts['server']} on 127.0.0.1. "
        f"Data set: {c['enrollment_participant']:,} participants, "
        f"{c['contributions_payment']:,} payments, {c['contributions_ledgerentry']:,} ledger "
        f"rows, {c['contributions_sponsorbatch']:,} sponsor batches, "
        f"{c['contributions_reminder']:,} reminders; database {facts['bytes'] / 2**30:.1f} GiB.",
    ]
    if facts.get("generated"):
        g = facts["generated"]
        lines.append(f"Generated in this run in {g['seconds']:,.0f} s (`bench/generate.py`).")
    for r in results:
        lines += ["", f"#### {r['scenario']}", ""]
        if r.get("raw"):  # kept from the doc as it was written (see kept_from_doc)
            lines.append(r["raw"].strip())
            continue
        if r.get("when") and r["when"] != now():
            lines += [f"Run {r['when']}.", ""]
        rows = r.get("rows") or []
        if rows:
            keys: list[str] = []
            for row in rows:
                keys += [k for k in row if k not in keys]
            lines.append("| " + " | ".join(keys) + " |")
            lines.append("|" + "---|" * len(keys))
            for row in rows:
                lines.append("| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |")
            lines.append("")
        note = str(r.get("notes") or "").strip()
        if r.get("seconds") is not None:
            note = (note + " " if note else "") + f"(scenario wall time {r['seconds']:,.0f} s)"
        if note:
            lines.append(note)
    return "\n".join(lines).rstrip() + "\n"


def kept_from_doc(size: str, doc: Path = DOC) -> dict[str, Any]:
    """The scenarios' latest results as the doc's block of this size shows them, each section
    kept as written: bench/results/ is not in git, so on a fresh clone a run with --only
    would otherwise drop the other scenarios' results from the block."""
    start, end = f"<!-- bench:{size}:start -->", f"<!-- bench:{size}:end -->"
    text = doc.read_text() if doc.exists() else ""
    if start not in text or end not in text:
        return {}
    block = text.split(start, 1)[1].split(end, 1)[0]
    kept: dict[str, Any] = {}
    for section in block.split("\n#### ")[1:]:
        title, _nl, body = section.partition("\n")
        number = title.split(".", 1)[0].strip()
        if number.isdigit():
            kept[number] = {"number": int(number), "scenario": title.strip(), "raw": body}
    return kept


def write_doc(size: str, block: str, doc: Path = DOC) -> None:
    """Replace the block between this size's markers (add it under the results heading, sizes
    in the order 10m, 1m, 10k, if it is not there yet)."""
    start, end = f"<!-- bench:{size}:start -->", f"<!-- bench:{size}:end -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    new = f"{start}\n{block}{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _old, tail = rest.split(end, 1)
        text = head + new + tail
    else:
        if RESULTS_HEADING not in text:
            text = text.rstrip() + f"\n\n{RESULTS_HEADING}\n"
        head, tail = text.split(RESULTS_HEADING, 1)
        order = list(SIZES)[::-1]  # 10m first
        later = [f"<!-- bench:{s}:start -->" for s in order[order.index(size) + 1 :]]
        at = min((tail.find(m) for m in later if m in tail), default=-1)
        if at < 0:
            nxt = tail.find("\n## ")
            at = nxt + 1 if nxt >= 0 else len(tail)
            text = head + RESULTS_HEADING + tail[:at].rstrip() + f"\n\n{new}\n\n" + tail[at:]
        else:
            text = head + RESULTS_HEADING + tail[:at] + f"{new}\n\n" + tail[at:]
    doc.write_text(text.rstrip() + "\n")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        try:
            _child(*sys.argv[2:])
        except Exception:
            traceback.print_exc()
            raise SystemExit(1) from None
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", choices=list(SIZES), default="10k")
    parser.add_argument("--existing", action="store_true", help="reuse the loaded data set")
    parser.add_argument(
        "--regenerate", action="store_true", help="drop and regenerate an existing data set"
    )
    parser.add_argument("--only", default="", help="scenario numbers, e.g. 2,4")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer samples")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    parser.add_argument("--json", default="", help="also write the raw results here")
    args = parser.parse_args()
    url = dataset_url(args.size)
    facts_extra: dict[str, Any] = {}
    if not args.existing and _has_participants(url) and not args.regenerate:
        raise SystemExit(
            f"{url} already holds a data set: --existing to reuse it, or --regenerate to drop "
            "and generate it again"
        )
    if not args.existing:
        print(f"--- generating the {args.size} data set", flush=True)
        started = time.monotonic()
        env = {**os.environ, "BENCH_DATABASE_URL": url}
        subprocess.run(
            [sys.executable, "-m", "bench.generate",
             "--participants", str(SIZES[args.size]), "--seed", str(args.seed), "--fresh",
             "--progress"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        facts_extra["generated"] = {"seconds": time.monotonic() - started}
    wanted = {int(n) for n in args.only.split(",") if n.strip()}
    scenario_args = {
        "size": args.size,
        "participants": SIZES[args.size],
        "database_url": url,
        "seed": args.seed,
        "quick": args.quick,
    }
    stamp = now()
    results = []
    for number, module, title in SCENARIOS:
        if wanted and number not in wanted:
            continue
        result = _run_scenario(number, module, title, scenario_args)
        result.update(number=number, when=stamp)
        results.append(result)
    facts = {**dataset_facts(url), **facts_extra}
    command = f".venv/bin/python -m bench --size {args.size}" + (
        " --existing" if args.existing else ""
    )
    if args.only:
        command += f" --only {args.only}"
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "results": results}, indent=2))
    # keep the other scenarios' latest results of this size (a run with --only replaces its own)
    store = RESULTS / f"{args.size}.json"
    kept: dict[str, Any] = (
        json.loads(store.read_text())["results"] if store.exists() else kept_from_doc(args.size)
    )
    if not args.only:
        kept = {}
    kept.update({str(r["number"]): r for r in results})
    ordered = [kept[k] for k in sorted(kept, key=int)]
    block = render(args.size, command, facts, ordered)
    print(block)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        store.write_text(json.dumps({"facts": facts, "results": kept}, indent=2) + "\n")
        write_doc(args.size, block)
        print(f"written to {DOC.relative_to(ROOT)} and {store.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
