"""Deterministic synthetic data at national scale: participants, payments, ledger, coverage,
sponsor batches and reminders.

    .venv/bin/python -m bench.generate --participants 10000000 --months 12 [--seed 42] [--fresh]
    # database: BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/bpjsportal_scale

Shape (see shared/domain/BPU_RULES.md):
- provinces roughly by population (BPS census 2020, millions, 2022 Papua split approximated),
  a random village of the province; occupations with farmers the largest group, then traders,
  online drivers and fishermen; registration dates spread over 2019 to this month, leaning to
  recent years;
- payers: monthly (52 %), in advance (15 %, 3-6 months at a time), late (13 %, two months every
  other month, paid 40 days after), lapse-and-return (10 %, a gap of 5+ months), stopped (10 %,
  paid a few months then never again); partner-channel workers are paid for by a sponsor in
  monthly sponsor batches; today's reminders are planned by the real planner.

How it is fast (10 M participants + a year of payments on 2 cores in well under an hour; the
figures are in docs/benchmarks-history.md):
- the load session runs with synchronous_commit=off, session_replication_role=replica (no
  per-row triggers; sync_txid is written explicitly), a large maintenance_work_mem, and
  autovacuum off on the loaded tables until the end;
- secondary indexes, unique and foreign-key constraints of the big tables are dropped before
  the load and rebuilt after it (two sessions at once; foreign keys added NOT VALID, then
  validated in parallel); CHECK constraints stay (cheap per row, a rescan to re-add);
- participants are generated in Python by two processes (seeded per chunk, so the data does
  not depend on the process count) and loaded with binary COPY (psycopg 3);
- payments are generated set-based inside PostgreSQL, a month at a time, from a
  per-participant profile table and a table of amounts from the real quote function, and piped
  from `COPY (SELECT ...) TO STDOUT` into `COPY ... FROM STDIN` (COPY writes many rows per WAL
  record); each month's ledger rows are piped from its payments while the next month loads;
  coverage rows are derived from the same profile formulas (no sort of the ledger), so the
  result passes `manage.py check_ledger`;
- helper tables are UNLOGGED and dropped at the end; the ready file is touched once the
  indexes are built and the tables analysed; foreign-key validation and VACUUM come after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
from bisect import bisect
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from bench.common import ensure_database, setup_django
from bpjsportal.core import progress
from bpjsportal.core.progress import Progress
from contributions.shape import COND, PROFILES
from enrollment.shape import CHANNELS, FIRST, LAST, OCCUPATION_WEIGHTS, PROVINCE_POPULATION_M

# The shape (provinces, occupations, channels, names; payer profiles) lives in the portal's apps,
# shared with the demo (`manage.py seed_demo`): enrollment/shape.py and contributions/shape.py.
KPJ_BASE = 9_000_000_000  # generated KPJs sit far above the live sequence (starts 1,000,000,001)
CHUNK = 50_000  # participants per generation task (and per random stream)
LOADED_TABLES = [
    "enrollment_participant",
    "contributions_payment",
    "contributions_ledgerentry",
    "contributions_coverage",
]
SESSION = [
    "SET synchronous_commit = off",
    "SET session_replication_role = replica",  # no per-row triggers (sync_txid set explicitly)
    "SET maintenance_work_mem = '1536MB'",
    "SET work_mem = '256MB'",
    "SET max_parallel_workers_per_gather = 0",  # one scan order: deterministic ids
    "SET max_parallel_maintenance_workers = 1",
    "SET TimeZone = 'Asia/Jakarta'",
]

PARTICIPANT_COLUMNS = [
    "id", "nik_digest", "nik_encrypted", "kpj_number", "full_name", "birth_date", "sex", "phone",
    "email", "language",
    "village_id", "province_id", "regency_id", "address", "occupation_id", "declared_income",
    "jht", "channel", "registered_by_id", "branch_id", "partner_id", "consent_data",
    "consent_reminders", "created_at", "updated_at", "sync_txid",
]  # fmt: skip
PROFILE_COLUMNS = ["pid", "profile", "reg_m", "sponsor_id", "income", "jht", "sector", "h"]


def add_months(month: date, n: int) -> date:
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def log(msg: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {msg}", flush=True)


@dataclass
class Context:
    """Everything a generation process needs (built once in the parent, inherited by fork)."""

    dsn: str
    seed: int
    today: date
    sync_txid: int
    villages: dict[str, list[str]]
    districts: dict[str, list[str]]
    agents: dict[str, list[int]]
    branches: dict[str, int]
    sponsors: list[int]
    sectors: dict[str, str]
    levels: list[int]
    level_cum: list[float]
    first_reg: date = date(2019, 1, 1)
    provinces: list[str] = field(default_factory=lambda: list(PROVINCE_POPULATION_M))
    prov_cum: list[float] = field(
        default_factory=lambda: list(accumulate(PROVINCE_POPULATION_M.values()))
    )
    occupations: list[str] = field(default_factory=lambda: list(OCCUPATION_WEIGHTS))
    occ_cum: list[float] = field(
        default_factory=lambda: list(accumulate(OCCUPATION_WEIGHTS.values()))
    )

    def __post_init__(self) -> None:
        self.prov_total = self.prov_cum[-1]
        self.occ_total = self.occ_cum[-1]
        self.first_reg_ord = self.first_reg.toordinal()
        self.reg_span = (self.today - self.first_reg).days


PROFILE_NAMES = [p for p, _w in PROFILES]
PROFILE_CUM = list(accumulate(w for _p, w in PROFILES))
CHANNEL_NAMES = [c for c, _w in CHANNELS]
CHANNEL_CUM = list(accumulate(w for _c, w in CHANNELS))


_LUHN_DOUBLE = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
_EPOCH_1962 = date(1962, 1, 1).toordinal()


def _luhn_sum(digits: str, start: int) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits), start):
        d = ord(ch) - 48
        total += _LUHN_DOUBLE[d] if i % 2 == 0 else d
    return total


_LUHN_LOW = [_luhn_sum(f"{n:03d}", 0) for n in range(1000)]
_LUHN_HIGH: dict[int, int] = {}


def _kpj(pid: int) -> str:
    """KPJ = 10 digits + Luhn digit (same result as enrollment.kpj.luhn_check_digit, faster:
    the sum of the high seven digits is cached, the low three come from a table)."""
    n = KPJ_BASE + pid
    high = n // 1000
    hs = _LUHN_HIGH.get(high)
    if hs is None:
        hs = _LUHN_HIGH[high] = _luhn_sum(str(high), 3)
    return f"{n:010d}{(10 - (hs + _LUHN_LOW[n % 1000]) % 10) % 10}"


def participant_row(
    pid: int, rng: random.Random, ctx: Context, nik_serial: Any
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """One participant (columns PARTICIPANT_COLUMNS) and its payment profile (PROFILE_COLUMNS).

    The one place that decides what a participant row holds: if the NIK is stored differently
    (a keyed digest plus an encrypted value), change PARTICIPANT_COLUMNS and the tuple here.
    `nik_serial(prefix, born, sex)` returns a serial unique for that prefix/date/sex, or None
    when that combination is used up (another birth date is drawn)."""
    r = rng.random
    prov = ctx.provinces[bisect(ctx.prov_cum, r() * ctx.prov_total)]
    vs = ctx.villages[prov]
    village = vs[int(r() * len(vs))]
    sex = "F" if r() < 0.38 else "M"
    ds = ctx.districts[prov]
    prefix = ds[int(r() * len(ds))]
    while True:
        born = date.fromordinal(_EPOCH_1962 + int(r() * 16060))  # 44 years
        serial = nik_serial(prefix, born, sex)
        if serial is not None:
            break
    day = born.day + (40 if sex == "F" else 0)  # enrollment.nik.build_nik, inlined
    nik = f"{prefix}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"
    # registrations lean to recent years (the programme grew fast), in working hours (WIB)
    reg_day = date.fromordinal(ctx.first_reg_ord + int(ctx.reg_span * r() ** 0.6))
    created = datetime(reg_day.year, reg_day.month, reg_day.day, 1, tzinfo=UTC) + timedelta(
        seconds=int(r() * 32400)
    )
    channel = CHANNEL_NAMES[bisect(CHANNEL_CUM, r() * CHANNEL_CUM[-1])]
    sponsored = channel == "partner" and r() < 0.55
    occ = ctx.occupations[bisect(ctx.occ_cum, r() * ctx.occ_total)]
    income = ctx.levels[bisect(ctx.level_cum, r() * ctx.level_cum[-1])]
    jht = r() < 0.2
    profile = "monthly" if sponsored else PROFILE_NAMES[bisect(PROFILE_CUM, r() * 100)]
    sponsor = ctx.sponsors[int(r() * len(ctx.sponsors))] if channel == "partner" else None
    agents = ctx.agents[prov]
    from enrollment.pii import nik_columns  # keyed digest + encryption (enrollment/pii.py)

    row = (
        pid, *nik_columns(nik), _kpj(pid),
        f"{FIRST[int(r() * len(FIRST))]} {LAST[int(r() * len(LAST))]}",
        born, sex, f"+628{1_000_000_000 + int(r() * 8_999_999_999)}", "",
        "en" if r() < 0.03 else "id", village, prov, village[:5],
        f"Jl. Desa No. {1 + int(r() * 299)}", occ, income, jht, channel,
        agents[int(r() * len(agents))] if channel == "agent" else None,
        ctx.branches[prov] if channel in ("agent", "branch") else None,
        sponsor, True, r() < 0.9, created, created, ctx.sync_txid,
    )  # fmt: skip
    prof = (
        pid, profile, reg_day.replace(day=1), sponsor if sponsored else None, income, jht,
        ctx.sectors[occ], int(r() * 7),
    )  # fmt: skip
    return row, prof


_CTX: Context | None = None
_CONN: Any = None


def _column_types(conn: Any, table: str, columns: list[str]) -> list[str]:
    rows = conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s",
        [table],
    ).fetchall()
    types = dict(rows)
    return [types[c] for c in columns]


def _generate_chunk(chunk: int) -> int:
    """Generate participants [chunk*CHUNK + 1, ...] with their own random stream; binary COPY."""
    import psycopg

    global _CONN
    ctx = _CTX
    assert ctx is not None
    if _CONN is None:
        _CONN = psycopg.connect(ctx.dsn, autocommit=True)
        for stmt in SESSION:
            _CONN.execute(stmt)
    n_chunks = -(-ctx_total() // CHUNK)
    rng = random.Random(ctx.seed * 1_000_003 + chunk)
    seen: dict[tuple[str, date, str], int] = {}

    def nik_serial(prefix: str, born: date, sex: str) -> int | None:
        # serials interleave across chunks: chunk c uses c+1, c+1+n, c+1+2n, ... (<= 9999)
        key = (prefix, born, sex)
        local = seen.get(key, 0)
        serial = chunk + 1 + local * n_chunks
        if serial > 9999:
            return None
        seen[key] = local + 1
        return serial

    first = chunk * CHUNK + 1
    last = min(ctx_total(), first + CHUNK - 1)
    rows, profs = [], []
    for pid in range(first, last + 1):
        row, prof = participant_row(pid, rng, ctx, nik_serial)
        rows.append(row)
        profs.append(prof)
    with _CONN.transaction(), _CONN.cursor() as cur:
        cols = ", ".join(PARTICIPANT_COLUMNS)
        types = _column_types(_CONN, "enrollment_participant", PARTICIPANT_COLUMNS)
        with cur.copy(f"COPY enrollment_participant ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(types)
            for row in rows:
                cp.write_row(row)
        with cur.copy(f"COPY gen_profile ({', '.join(PROFILE_COLUMNS)}) FROM STDIN") as cp:
            for prof in profs:
                cp.write_row(prof)
    return last - first + 1


_TOTAL = 0


def ctx_total() -> int:
    return _TOTAL


# --- drop and rebuild of secondary indexes and constraints ---------------------------------------
def drop_secondary(conn: Any, tables: list[str], *, drop: bool = True) -> list[tuple[str, str]]:
    """Drop unique/foreign-key constraints and non-primary-key indexes of `tables`; return the
    statements that rebuild them, as (phase, sql): 'index' (run in parallel), 'attach' (unique
    constraint onto its rebuilt index), 'fk' (add NOT VALID) and 'validate' (in parallel)."""
    rebuild: list[tuple[str, str]] = []
    drops: list[str] = []
    cons = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, c.contype,
                  pg_get_constraintdef(c.oid), c.conindid::regclass::text
           FROM pg_constraint c WHERE c.conrelid = ANY(%s::regclass[])
             AND c.contype IN ('u', 'f') ORDER BY c.contype, 1, 2""",
        [tables],
    ).fetchall()
    for table, name, kind, definition, index in cons:
        if kind == "u":
            idx = conn.execute("SELECT pg_get_indexdef(%s::regclass)", [index]).fetchone()[0]
            rebuild.append(("index", idx))
            rebuild.append(
                ("attach", f'ALTER TABLE {table} ADD CONSTRAINT "{name}" UNIQUE USING INDEX '
                           f'"{index}"')
            )  # fmt: skip
        else:
            rebuild.append(("fk", f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition} '
                                  "NOT VALID"))  # fmt: skip
            rebuild.append(("validate", f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"'))
        drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    indexes = conn.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
           ORDER BY 1""",
        [tables],
    ).fetchall()
    for name, definition in indexes:
        rebuild.append(("index", definition))
        drops.append(f'DROP INDEX "{name}"')
    if drop:
        for stmt in drops:
            conn.execute(stmt)
    return rebuild


def missing_secondary(conn: Any, template_dsn: str, tables: list[str]) -> list[tuple[str, str]]:
    """For --resume: the rebuild statements of a template database migrated the same way (the
    definitions were dropped here), minus the indexes and constraints this database has."""
    import psycopg

    with psycopg.connect(template_dsn, autocommit=True) as template:
        wanted = drop_secondary(template, tables, drop=False)
    have = {r[0] for r in conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = ANY(%s::regclass[]) "
        "UNION SELECT conname FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])",
        [tables, tables],
    ).fetchall()}  # fmt: skip
    valid = {r[0] for r in conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND convalidated",
        [tables],
    ).fetchall()}  # fmt: skip

    def name_of(stmt: str) -> str:
        if stmt.startswith("CREATE"):
            return stmt.split(" INDEX ", 1)[1].split(" ON ", 1)[0].strip('"')
        return stmt.split('CONSTRAINT "', 1)[1].split('"', 1)[0]

    out = []
    for phase, stmt in wanted:
        name = name_of(stmt)
        if phase == "validate":
            if name not in valid:
                out.append((phase, stmt))
        elif phase == "attach":
            if name not in {r[0] for r in conn.execute(
                    "SELECT conname FROM pg_constraint WHERE conname = %s", [name])}:  # fmt: skip
                out.append((phase, stmt))
        elif name not in have:
            out.append((phase, stmt))
    return out


def rebuild_secondary(
    dsn: str, rebuild: list[tuple[str, str]], started: float, phases: tuple[str, ...]
) -> None:
    import psycopg

    def run(sql: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            for stmt in SESSION:
                c.execute(stmt)
            t = time.monotonic()
            c.execute(sql)
            log(f"  {time.monotonic() - t:6.1f}s {sql[:110]}", started)

    def phase(name: str, parallel: int) -> None:
        stmts = [s for p, s in rebuild if p == name]
        # biggest tables first so the two sessions finish together
        order = {
            t: i
            for i, t in enumerate(
                ["contributions_ledgerentry", "contributions_payment", "enrollment_participant"]
            )
        }
        stmts.sort(key=lambda s: min((order[t] for t in order if t in s), default=9))
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(run, stmts))

    for name in phases:
        phase(name, 1 if name in ("attach", "fk") else 2)


# --- set-based SQL --------------------------------------------------------------------------------
# cond(k): does a participant of this profile pay an event k months after its first month?
# (kmax = the index of this month; late payers never pay the current month yet)
# COND (contributions/shape.py): does a participant of this profile pay in event month k?

BASE_SQL = """
CREATE UNLOGGED TABLE gen_base AS
SELECT p.pid, p.profile, p.reg_m, p.sponsor_id, p.income, p.jht, p.sector, p.h,
       greatest(p.reg_m, %(window)s::date) AS first_m,
       CASE p.profile WHEN 'advance' THEN 3 + p.h %% 4 WHEN 'late' THEN 2 ELSE 1 END AS l,
       ((extract(year FROM greatest(p.reg_m, %(window)s::date)) - extract(year FROM
         %(window)s::date)) * 12 + extract(month FROM greatest(p.reg_m, %(window)s::date))
         - extract(month FROM %(window)s::date))::int AS off,
       %(months)s - 1 - ((extract(year FROM greatest(p.reg_m, %(window)s::date)) - extract(year
         FROM %(window)s::date)) * 12 + extract(month FROM greatest(p.reg_m, %(window)s::date))
         - extract(month FROM %(window)s::date))::int AS kmax
FROM gen_profile p ORDER BY p.pid
"""

BATCHES_SQL = f"""
INSERT INTO contributions_sponsorbatch (sponsor_id, reference, participant_months, row_count,
    total_amount, paid_at, created_at, request_digest)
SELECT b.sponsor_id,
       'GENBATCH-' || b.sponsor_id || '-' || to_char(%(window)s::date
           + make_interval(months => mi), 'YYYYMM'),
       sum(b.l), count(*), sum(a.arr[mi + 1]), min(x.paid_at), min(x.paid_at),
       ''  -- no request digest kept: a replay is compared by row count and total, as before it
FROM gen_base b JOIN gen_arr a USING (income, jht, sector, l)
CROSS JOIN generate_series(0, %(months)s - 1) AS mi
CROSS JOIN LATERAL (SELECT least((%(window)s::date + make_interval(months => mi)
                    + interval '9 days')::timestamptz, now() - interval '1 hour') AS paid_at) x
WHERE b.sponsor_id IS NOT NULL AND b.off <= mi AND {COND.format(k="mi - b.off")}
GROUP BY b.sponsor_id, mi ORDER BY mi, b.sponsor_id
"""

# One month of payment events, numbered in scan order (deterministic ids: no parallel plans).
EVENTS_SQL = f"""
SELECT %(base)s::bigint + row_number() OVER () AS id, b.pid, b.sponsor_id, b.l,
       a.arr[%(mi)s + 1] AS amount,
       (b.profile = 'returning' AND %(mi)s - b.off = 8 + b.h) AS reactivation,
       coalesce(sb.paid_at, least((%(month)s::date
           + CASE WHEN b.profile = 'late' THEN interval '40 days'
                  ELSE make_interval(days => 5 + b.pid::int %% 12) END
           + make_interval(secs => (b.pid * 7919) %% 36000 + 3600))::timestamptz,
           now() - interval '1 hour')) AS paid_at,
       sb.id AS batch_id
FROM gen_base b JOIN gen_arr a USING (income, jht, sector, l)
LEFT JOIN contributions_sponsorbatch sb
  ON sb.sponsor_id = b.sponsor_id AND sb.reference = 'GENBATCH-' || b.sponsor_id || '-'
     || %(yyyymm)s
WHERE b.off <= %(mi)s AND {COND.format(k="%(mi)s - b.off")}
"""
PAYMENT_COLUMNS = {
    "id": "e.id", "participant_id": "e.pid", "amount": "e.amount", "months": "e.l",
    "period_start": "%(month)s::date",
    "payer": "CASE WHEN e.sponsor_id IS NULL THEN 'participant' ELSE 'sponsor' END",
    "channel": "CASE WHEN e.sponsor_id IS NOT NULL THEN 'partner' ELSE "
               "(ARRAY['bank','retail','ewallet','agent'])[1 + e.pid %% 4] END",
    "reference": "'GEN-' || e.pid || '-' || %(yyyymm)s", "paid_at": "e.paid_at",
    "collected_by_id": "NULL", "sponsor_id": "e.sponsor_id", "batch_id": "e.batch_id",
    "reactivation": "e.reactivation", "created_at": "e.paid_at", "sync_txid": "%(txid)s",
}  # fmt: skip
LEDGER_COLUMNS = {
    "id": "e.id", "participant_id": "e.pid", "kind": "'payment'", "amount": "e.amount",
    "months": "e.l", "period_start": "%(month)s::date", "payment_id": "e.id",
    "reverses_id": "NULL", "reason": "''", "created_by_id": "NULL", "created_at": "e.paid_at",
}  # fmt: skip

# The ledger rows of a range of payments just loaded (id order; the same id as the payment).
LEDGER_FROM_PAYMENTS = {
    "id": "p.id", "participant_id": "p.participant_id", "kind": "'payment'", "amount": "p.amount",
    "months": "p.months", "period_start": "p.period_start", "payment_id": "p.id",
    "reverses_id": "NULL", "reason": "''", "created_by_id": "NULL", "created_at": "p.paid_at",
}  # fmt: skip

# Coverage in closed form from the same profile rules as COND (no per-row series, no sort of the
# ledger): the last paying month index, the month a returning payer came back, and the balance
# from prefix sums of the monthly amounts (every run of cover is contiguous).
COVERAGE_SELECT = """
WITH c AS (
    SELECT b.*, p.pre,
           CASE b.profile
               WHEN 'monthly' THEN b.kmax
               WHEN 'advance' THEN b.kmax - b.kmax %% b.l
               WHEN 'late' THEN CASE WHEN b.kmax >= 1 THEN (b.kmax - 1) - (b.kmax - 1) %% 2 END
               WHEN 'returning' THEN CASE WHEN b.kmax >= 8 + b.h THEN b.kmax
                                          ELSE least(b.kmax, 2) END
               WHEN 'stopped' THEN least(b.kmax, 1 + b.h %% 4)
           END AS last_k,
           CASE WHEN b.profile = 'returning' AND b.kmax >= 8 + b.h THEN 8 + b.h END AS react_k
    FROM gen_base b JOIN gen_pre p USING (income, jht, sector)
), d AS (
    SELECT c.*, (c.first_m + make_interval(months => c.last_k + c.l - 1))::date AS pt
    FROM c
), f AS (
    SELECT d.*, coalesce((d.pt + interval '1 month')::date, d.reg_m) AS first_unpaid FROM d
)
SELECT f.pid::bigint,
       (CASE WHEN f.first_unpaid > %(this)s::date THEN 'active'
             WHEN f.first_unpaid <= %(threshold)s::date THEN 'lapsed' ELSE 'grace' END)::varchar,
       f.reg_m, f.pt,
       (CASE WHEN f.last_k IS NOT NULL
             THEN (f.first_m + make_interval(months => coalesce(f.react_k, 0)))::date END),
       (CASE WHEN f.first_unpaid <= %(threshold)s::date
             THEN {LAPSE_DATE} END),
       coalesce(f.last_k + f.l - coalesce(f.react_k, 0), 0)::int,
       (f.react_k IS NOT NULL)::int,
       (CASE WHEN f.last_k IS NULL THEN 0
             WHEN f.react_k IS NULL THEN f.pre[f.off + f.last_k + f.l + 1] - f.pre[f.off + 1]
             ELSE f.pre[f.off + 4] - f.pre[f.off + 1]
                  + f.pre[f.off + f.last_k + 2] - f.pre[f.off + f.react_k + 1] END)::bigint,
       now()
FROM f
"""
COVERAGE_COLUMNS = [
    "participant_id", "status", "start_month", "paid_through", "active_since", "lapsed_since",
    "continuous_months", "reactivations", "balance", "updated_at",
]  # fmt: skip


def claim_keys(conn: Any) -> None:
    """The loaded rows' values unique across participants, claimed in enrollment_uniquekey as
    the application claims them (enrollment/unique_keys.py, the same statements): on a Citus
    cluster that table is what refuses a second NIK or a replayed payment reference. Its
    primary key is dropped for the load and built once after it (a sorted build, not millions
    of index insertions). Runs again from scratch on a resumed load."""
    from enrollment import unique_keys

    conn.execute("TRUNCATE enrollment_uniquekey")
    conn.execute(
        "ALTER TABLE enrollment_uniquekey DROP CONSTRAINT IF EXISTS enrollment_uniquekey_pkey"
    )
    for rows in ("participants", "payments"):
        sql = unique_keys.stored_claims_sql(rows)
        conn.execute(sql, [0] * sql.count("%s"))
    conn.execute("ALTER TABLE enrollment_uniquekey ADD PRIMARY KEY (kind, value)")


def _connect(dsn: str) -> Any:
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    for stmt in SESSION:
        conn.execute(stmt)
    return conn


def _bind(conn: Any, query: str, params: dict[str, Any]) -> str:
    import psycopg

    return psycopg.ClientCursor(conn).mogrify(query, params)


def copy_pipe(dsn: str, select: str, table: str, columns: list[str]) -> int:
    """COPY (select) TO STDOUT in one session straight into COPY table FROM STDIN in another
    (binary; the select casts every column to the table's type). COPY inserts many rows per
    WAL record and page, unlike INSERT ... SELECT, and the two sessions use both cores."""
    with _connect(dsn) as out_conn, _connect(dsn) as in_conn:
        query = f"COPY ({select}) TO STDOUT (FORMAT BINARY)"
        cols = ", ".join(columns)
        with in_conn.transaction(), in_conn.cursor() as cin, out_conn.cursor() as cout:
            with (
                cout.copy(query) as src,
                cin.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as dst,
            ):
                for block in src:
                    dst.write(block)
            return int(cin.rowcount)


def _typed_select(conn: Any, table: str, exprs: dict[str, str]) -> tuple[str, list[str]]:
    cols = list(exprs)
    types = _column_types(conn, table, cols)
    return ", ".join(f"({exprs[c]})::{t}" for c, t in zip(cols, types, strict=True)), cols


def main() -> None:
    global _CTX, _TOTAL
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--participants", type=int, default=100_000, help="participants to generate"
    )
    parser.add_argument("--months", type=int, default=12, help="months of payment history")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same data each run)")
    parser.add_argument(
        "--processes", type=int, default=2, help="processes generating participants at once"
    )
    parser.add_argument("--database", default="bpjsportal_scale", help="database to load")
    # rate and ETA lines on stderr (on by default at a terminal; bpjsportal/core/progress.py)
    progress.add_arguments(parser)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--keep-indexes", action="store_true", help="load with indexes (slow)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted load (same day): payments from the last committed month",
    )
    parser.add_argument(
        "--template-database",
        default="bench10k",
        help="with --resume: a database migrated the same way, for the dropped index definitions",
    )
    parser.add_argument("--ready-file", default="", help="touched once the data set is usable")
    parser.add_argument(
        "--skip-indexes",
        default="",
        help="with --resume: index names (comma-separated) not to build, when disk is short",
    )
    parser.add_argument(
        "--reminder-days",
        default="12",
        help="days of this month (comma-separated, up to today) to plan reminders for; '' none",
    )
    args = parser.parse_args()
    started = time.monotonic()
    url = os.environ.get(
        "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{args.database}"
    )
    os.environ["BENCH_DATABASE_URL"] = url
    if args.fresh:
        ensure_database(url, fresh=True)
    setup_django(args.database)
    log("schema and reference data ready", started)
    summary = generate(args, url, started)
    print(summary, flush=True)


def generate(args: Any, url: str, started: float) -> dict[str, Any]:
    global _CTX, _TOTAL
    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from contributions import coverage as rules
    from contributions import due_dates, rules_sql
    from contributions.rates import income_levels, quote_contribution
    from enrollment.models import Branch, Occupation, Participant, Partner, Region, StaffProfile

    resuming = args.resume and Participant.objects.exists()
    if Participant.objects.exists() and not resuming:
        raise SystemExit("the scale database already has participants; use --fresh")
    today = timezone.localdate()
    this_month = today.replace(day=1)
    window_start = add_months(this_month, -(args.months - 1))
    dsn = url.replace("postgres://", "postgresql://", 1)
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def step(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[name] = round(now - mark, 1)
        mark = now
        log(f"{name}: {timings[name]} s", started)

    if not resuming:
        # --- staff and partners ----------------------------------------------------------------
        user_model = get_user_model()
        branches = {
            code: Branch.objects.create(
                code=f"KC{code}", name=f"Cabang {code}", province_id=code
            ).pk
            for code in PROVINCE_POPULATION_M
        }
        agents: dict[str, list[int]] = {}
        for code, branch in branches.items():
            n_agents = max(2, round(PROVINCE_POPULATION_M[code]))
            users = user_model.objects.bulk_create(
                user_model(username=f"gen-agent-{code}-{i}") for i in range(n_agents)
            )
            profiles = StaffProfile.objects.bulk_create(
                StaffProfile(user=u, role="agent", branch_id=branch, agent_code=f"G{code}{i:04d}")
                for i, u in enumerate(users)
            )
            agents[code] = [p.pk for p in profiles]
        sponsors = [
            Partner.objects.get_or_create(code=c, defaults={"name": n, "kind": k})[0].pk
            for c, n, k in [("GNLINGKARAN", "GN Lingkaran", "sponsor"),
                            ("COMBOFIT", "ComboFit Jamsostek", "bundle"),
                            ("SERTAKAN", "Fita Sertakan", "sponsor")]
        ]  # fmt: skip
        villages: dict[str, list[str]] = {}
        for code in Region.objects.filter(level=4).order_by("code").values_list("code", flat=True):
            villages.setdefault(code[:2], []).append(code)
        districts = {c: sorted({v[:8].replace(".", "") for v in vs}) for c, vs in villages.items()}
        levels = income_levels(today)
        level_weights = [max(1.0, 40.0 / (i + 1) ** 1.3) for i in range(len(levels))]
        sectors = dict(Occupation.objects.values_list("code", "sector"))

        # --- amounts from the real quote function: arr[i] = months i..i+l-1 from window start
        n_cols = args.months + 6
        monthly: dict[tuple[int, bool, str], list[int]] = {}
        for income in levels:
            for jht in (False, True):
                for sector in set(sectors.values()):
                    monthly[(income, jht, sector)] = [
                        quote_contribution(
                            declared_income=income,
                            programmes=["JKK", "JKM", "JHT"] if jht else ["JKK", "JKM"],
                            months=1,
                            first_month=add_months(window_start, i),
                            sector=sector,
                        ).total
                        for i in range(n_cols)
                    ]
        connection.close()  # forked workers must not share the parent's connection

        conn = psycopg.connect(dsn, autocommit=True)
        for stmt in SESSION:
            conn.execute(stmt)
        sync_txid = int(conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0])
        conn.execute(
            "CREATE UNLOGGED TABLE gen_arr (income bigint, jht boolean, sector text, l int, "
            "arr bigint[], PRIMARY KEY (income, jht, sector, l))"
        )
        with conn.cursor().copy("COPY gen_arr FROM STDIN") as cp:
            for (income, jht, sector), amounts in monthly.items():
                for length in range(1, 7):
                    spans = [sum(amounts[i : i + length]) for i in range(n_cols - length + 1)]
                    cp.write_row((income, jht, sector, length, spans))
        conn.execute(
            "CREATE UNLOGGED TABLE gen_pre (income bigint, jht boolean, sector text, pre bigint[], "
            "PRIMARY KEY (income, jht, sector))"
        )
        with conn.cursor().copy("COPY gen_pre FROM STDIN") as cp:
            for (income, jht, sector), amounts in monthly.items():
                cp.write_row((income, jht, sector, [0, *accumulate(amounts)]))
        conn.execute(
            "CREATE UNLOGGED TABLE gen_profile (pid bigint, profile text, reg_m date, "
            "sponsor_id bigint, income bigint, jht boolean, sector text, h int)"
        )
        for table in LOADED_TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        rebuild = [] if args.keep_indexes else drop_secondary(conn, LOADED_TABLES)
        step("staff, partners, amounts, indexes dropped")

        # --- participants: Python in N processes, binary COPY ---------------------------------
        _TOTAL = args.participants
        _CTX = Context(
            dsn=dsn, seed=args.seed, today=today, sync_txid=sync_txid, villages=villages,
            districts=districts, agents=agents, branches=branches, sponsors=sponsors,
            sectors=sectors, levels=levels, level_cum=list(accumulate(level_weights)),
        )  # fmt: skip
        chunks = range(-(-args.participants // CHUNK))
        made = Progress(
            "  participants", total=args.participants, unit="participants", enabled=args.progress
        )
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            for n in pool.imap_unordered(_generate_chunk, chunks):
                made.advance(n)
        made.finish()
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('enrollment_participant', 'id'), %s)",
            [args.participants],
        )
        step(f"{args.participants:,} participants (binary COPY, {args.processes} processes)")

        # --- per-participant base table, sponsor batches, payments + ledger a month at a time ----
        conn.execute(BASE_SQL, {"window": window_start, "months": args.months})
        conn.execute("ANALYZE gen_base")
        conn.execute("ANALYZE gen_arr")
        conn.execute("ANALYZE gen_pre")
        step("profile base table")
        conn.execute(BATCHES_SQL, {"window": window_start, "months": args.months})
    n_payments = n_ledger = 0
    if resuming:
        conn = _connect(dsn)
        sync_txid = int(
            conn.execute(
                "SELECT sync_txid FROM enrollment_participant ORDER BY id LIMIT 1"
            ).fetchone()[0]
        )
        template = dsn.rsplit("/", 1)[0] + "/" + args.template_database
        rebuild = missing_secondary(conn, template, LOADED_TABLES)
        skip = {n.strip() for n in args.skip_indexes.split(",") if n.strip()}
        skipped = [st for ph, st in rebuild if ph == "index" and any(
            f"INDEX {n} ON" in st for n in skip)]  # fmt: skip
        rebuild = [(ph, st) for ph, st in rebuild if st not in skipped]
        for st in skipped:
            log(f"  not built (--skip-indexes): {st}", started)
        n_payments = int(
            conn.execute("SELECT coalesce(max(id), 0) FROM contributions_payment").fetchone()[0]
        )
        n_ledger = int(
            conn.execute("SELECT coalesce(max(id), 0) FROM contributions_ledgerentry").fetchone()[0]
        )
        log(f"resuming after payment {n_payments:,}, ledger row {n_ledger:,}; "
            f"{len(rebuild)} index/constraint statements to run", started)  # fmt: skip
    pay_sel, pay_cols = _typed_select(conn, "contributions_payment", PAYMENT_COLUMNS)
    led_sel, led_cols = _typed_select(conn, "contributions_ledgerentry", LEDGER_FROM_PAYMENTS)

    def ledger_for(lo: int, hi: int) -> int:
        """The ledger rows of payments lo+1..hi, piped from the payments just loaded."""
        select = _bind(conn, f"SELECT {led_sel} FROM contributions_payment p "
                             "WHERE p.id > %(lo)s AND p.id <= %(hi)s ORDER BY p.id",
                       {"lo": lo, "hi": hi})  # fmt: skip
        return copy_pipe(dsn, select, "contributions_ledgerentry", led_cols)

    if n_ledger > n_payments:  # a ledger month committed without its payments (interrupted)
        conn.execute("DELETE FROM contributions_ledgerentry WHERE id > %s", [n_payments])
    elif n_ledger < n_payments:
        ledger_for(n_ledger, n_payments)
    first_mi = 0
    if n_payments:
        last = conn.execute(
            "SELECT period_start FROM contributions_payment WHERE id = %s", [n_payments]
        ).fetchone()[0]
        first_mi = months_between(window_start, last) + 1
    # payments of month m+1 load while the ledger rows of month m are piped from payments m
    months_done = Progress(
        "  payment months", total=args.months - first_mi, unit="months", enabled=args.progress
    )
    with ThreadPoolExecutor(1) as ledger_pool:
        pending = None
        for mi in range(first_mi, args.months):
            month = add_months(window_start, mi)
            params = {"mi": mi, "month": month, "yyyymm": month.strftime("%Y%m"),
                      "txid": sync_txid, "base": n_payments}  # fmt: skip
            events = _bind(conn, EVENTS_SQL, params)
            select = f"SELECT {_bind(conn, pay_sel, params)} FROM ({events}) e"
            n = copy_pipe(dsn, select, "contributions_payment", pay_cols)
            if pending is not None:
                pending.result()
            pending = ledger_pool.submit(ledger_for, n_payments, n_payments + n)
            n_payments += n
            log(f"  {month:%Y-%m}: {n:,} payments (ledger rows following)", started)
            months_done.advance()
        if pending is not None:
            pending.result()
        months_done.finish()
    n_ledger = int(
        conn.execute("SELECT coalesce(max(id), 0) FROM contributions_ledgerentry").fetchone()[0]
    )
    assert n_ledger == n_payments, (n_ledger, n_payments)
    for table in ("contributions_payment", "contributions_ledgerentry"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [max(n_payments, 1)]
        )
    step(f"{n_payments:,} payments and ledger rows, sponsor batches (COPY pipes)")
    lapse_sql = rules_sql.lapse_date("f.first_unpaid", "%(grace)s", "%(due_dates)s", "%(due_day)s")
    cov_sql = _bind(
        conn,
        COVERAGE_SELECT.replace("{LAPSE_DATE}", lapse_sql),
        {
            "this": this_month,
            "threshold": rules.lapse_threshold(today),
            "grace": rules.grace_months(),
            "due_dates": due_dates.due_dates_param(today),
            "due_day": rules.due_day(),
        },
    )
    if conn.execute("SELECT to_regclass('gen_base') IS NOT NULL").fetchone()[0]:
        copy_pipe(dsn, cov_sql, "contributions_coverage", COVERAGE_COLUMNS)
        step("coverage rows (closed form from the profile rules)")
        conn.execute("DROP TABLE gen_base, gen_arr, gen_pre, gen_profile")
    # else: resumed after the coverage step (it ends by dropping the helper tables)

    claim_keys(conn)
    step("unique keys claimed (NIK digests, KPJ numbers, payment references)")

    if rebuild:
        rebuild_secondary(dsn, rebuild, started, ("index", "attach", "fk"))
        step("indexes rebuilt, unique constraints attached, foreign keys added NOT VALID")
    for table in LOADED_TABLES:
        conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        conn.execute(f"ANALYZE {table}")
    conn.execute("SET session_replication_role = origin")
    step("ANALYZE of the loaded tables")

    n_reminders = 0
    days = [int(d) for d in args.reminder_days.split(",") if d.strip()]
    if days:
        from contributions.messaging import reminders

        reminders.seed_reminder_rules()
        # this month's reminder runs that have come (default the 12th: due-soon and thanks), by
        # the real planner over today's coverage; the past ones marked sent at their send time
        for day in sorted({this_month.replace(day=d) for d in days}):
            if day <= today:
                n_reminders += reminders.plan_reminders(day=day).total
        connection.close()
        conn.execute(
            "UPDATE contributions_reminder SET state = 'sent', sent_at = send_after, "
            "attempts = 1 WHERE planned_for < %s AND state = 'queued'",
            [today],
        )
        step(f"{n_reminders:,} reminders planned this month (real planner)")

    if args.ready_file:
        # usable from here: indexes and statistics are in place; what follows only checks the
        # existing rows against the foreign keys and sets the visibility map (no blocking locks)
        Path(args.ready_file).touch()
        log(f"ready: {args.ready_file}", started)
    if rebuild:
        rebuild_secondary(dsn, rebuild, started, ("validate",))
        step("foreign keys validated")
    conn.execute("VACUUM (ANALYZE)")
    step("VACUUM ANALYZE")

    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    tables = conn.execute(
        "SELECT relname, pg_total_relation_size(oid), pg_relation_size(oid) FROM pg_class "
        "WHERE relname = ANY(%s) ORDER BY 1",
        [[*LOADED_TABLES, "contributions_reminder"]],
    ).fetchall()
    statuses = dict(
        conn.execute(
            "SELECT status, count(*) FROM contributions_coverage GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    n_batches = conn.execute("SELECT count(*) FROM contributions_sponsorbatch").fetchone()[0]
    conn.close()
    total = round(time.monotonic() - started, 1)
    log(f"done in {total} s; database {size / 2**30:.1f} GiB", started)
    return {
        "participants": args.participants,
        "months": args.months,
        "payments": n_payments,
        "ledger_rows": n_payments,
        "sponsor_batches": n_batches,
        "reminders": n_reminders,
        "statuses": statuses,
        "seconds": total,
        "steps": timings,
        "database_bytes": size,
        "tables": {t: {"total": tot, "heap": heap} for t, tot, heap in tables},
    }


if __name__ == "__main__":
    main()
