"""Deterministic synthetic data at national scale: participants, payments, ledger, coverage.

    .venv/bin/python bench/generate.py --participants 1000000 --months 12 [--seed 42]
    # database: BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/bpjsportal_scale

Shape (see shared/domain/BPU_RULES.md):
- provinces roughly by population (BPS census 2020, millions, 2022 Papua split approximated),
  a random village of the province; occupations with farmers the largest group, then traders,
  online drivers and fishermen; registration dates spread over 2019 to this month;
- payers: monthly (52 %), in advance (15 %, 3-6 months at a time), late (13 %, two months every
  other month), lapse-and-return (10 %, a gap of 5+ months), stopped (10 %, paid a few months
  then never again); 8 % of workers are paid for by a sponsor in monthly sponsor batches.

Participants are generated in Python (seeded) and loaded with COPY (psycopg 3). Payments, ledger
rows, sponsor batches and coverage rows are generated inside PostgreSQL with set-based
INSERT ... SELECT from a per-participant profile table, with amounts from the real quote function
(a table of every income level x JHT x sector x month). The result passes `check_ledger`.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from common import setup_django

PROVINCE_POPULATION_M = {
    "11": 5.3, "12": 14.8, "13": 5.5, "14": 6.4, "15": 3.5, "16": 8.5, "17": 2.0, "18": 9.0,
    "19": 1.5, "21": 2.1, "31": 10.6, "32": 48.3, "33": 36.5, "34": 3.7, "35": 41.0, "36": 11.9,
    "51": 4.3, "52": 5.3, "53": 5.3, "61": 5.4, "62": 2.7, "63": 4.1, "64": 3.8, "65": 0.7,
    "71": 2.6, "72": 3.0, "73": 9.1, "74": 2.6, "75": 1.2, "76": 1.4, "81": 1.8, "82": 1.3,
    "91": 1.0, "92": 0.6, "93": 0.5, "94": 1.3, "95": 1.4, "96": 0.6,
}  # fmt: skip
OCCUPATION_WEIGHTS = {
    "petani": 30, "pedagang": 18, "ojol": 12, "nelayan": 9, "buruh_harian": 7, "tukang": 5,
    "peternak": 4, "buruh_tani": 3, "sopir": 3, "kurir": 2, "penjahit": 1.5, "prt": 1.5,
    "pengrajin": 1, "marbot": 1, "seniman": 0.5, "wiraswasta": 1, "profesional": 0.3,
    "lainnya": 0.2,
}  # fmt: skip
PROFILES = [("monthly", 52), ("advance", 15), ("late", 13), ("returning", 10), ("stopped", 10)]
FIRST = ["Budi", "Siti", "Agus", "Dewi", "Made", "Wayan", "Rina", "Joko", "Nur", "Andi", "Putri",
         "Yohanes", "Ketut", "Fitri", "Rahmat", "Sri", "Hendra", "Lestari", "Asep", "Ujang",
         "Maria", "Fransiskus", "Dian", "Eko", "Yusuf", "Aisyah", "Bayu", "Citra"]  # fmt: skip
LAST = ["Santoso", "Rahayu", "Hidayat", "Saputra", "Wijaya", "Nugroho", "Lubis", "Siregar",
        "Pratama", "Kurniawan", "Susanti", "Daeng", "Simanjuntak", "Manurung", "Tanjung",
        "Setiawan", "Gunawan", "Halim", "Wibowo", "Sembiring"]  # fmt: skip
KPJ_BASE = 9_000_000_000  # generated KPJs sit far above the live sequence (starts 1,000,000,001)

PARTICIPANT_COLUMNS = [
    "id", "nik_digest", "nik_encrypted", "kpj_number", "full_name", "birth_date", "sex", "phone",
    "email", "language",
    "village_id", "province_id", "regency_id", "address", "occupation_id", "declared_income",
    "jht", "channel", "registered_by_id", "branch_id", "partner_id", "consent_data",
    "consent_reminders", "created_at", "updated_at",
]  # fmt: skip


def add_months(month: date, n: int) -> date:
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def log(msg: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {msg}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12, help="months of payment history")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.monotonic()
    setup_django("bpjsportal_scale")
    log("schema and reference data ready", started)

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from contributions.rates import income_levels, quote_contribution
    from contributions.services import refresh_coverage_statuses
    from enrollment.kpj import luhn_check_digit
    from enrollment.models import Branch, Occupation, Participant, Partner, Region, StaffProfile
    from enrollment.nik import build_nik
    from enrollment.pii import nik_columns

    if Participant.objects.exists():
        raise SystemExit("the scale database already has participants; drop it first")
    rng = random.Random(args.seed)
    today = timezone.localdate()
    this_month = today.replace(day=1)
    window_start = add_months(this_month, -(args.months - 1))

    # --- staff and partners ----------------------------------------------------------------
    user_model = get_user_model()
    branches = {
        code: Branch.objects.create(code=f"KC{code}", name=f"Cabang {code}", province_id=code)
        for code in PROVINCE_POPULATION_M
    }
    agents: dict[str, list[int]] = {}
    for code, branch in branches.items():
        n_agents = max(2, round(PROVINCE_POPULATION_M[code]))
        users = user_model.objects.bulk_create(
            user_model(username=f"gen-agent-{code}-{i}") for i in range(n_agents)
        )
        profiles = StaffProfile.objects.bulk_create(
            StaffProfile(user=u, role="agent", branch=branch, agent_code=f"G{code}{i:04d}")
            for i, u in enumerate(users)
        )
        agents[code] = [p.pk for p in profiles]
    sponsors = [
        Partner.objects.get_or_create(code=c, defaults={"name": n, "kind": k})[0].pk
        for c, n, k in [("GNLINGKARAN", "GN Lingkaran", "sponsor"),
                        ("COMBOFIT", "ComboFit Jamsostek", "bundle"),
                        ("SERTAKAN", "Fita Sertakan", "sponsor")]
    ]  # fmt: skip
    log(f"{len(branches)} branches, {sum(map(len, agents.values()))} agents", started)

    # --- participants via COPY ---------------------------------------------------------------
    villages: dict[str, list[str]] = {}
    for code in Region.objects.filter(level=4).values_list("code", flat=True).iterator():
        villages.setdefault(code[:2], []).append(code)
    districts = {
        c: sorted({v[:8] for v in vs}) for c, vs in villages.items()
    }  # NIK issued in a district of the same province
    sectors = dict(Occupation.objects.values_list("code", "sector"))
    levels = income_levels(today)
    level_weights = [max(1.0, 40.0 / (i + 1) ** 1.3) for i in range(len(levels))]
    provinces = list(PROVINCE_POPULATION_M)
    prov_weights = list(PROVINCE_POPULATION_M.values())
    occupations = list(OCCUPATION_WEIGHTS)
    occ_weights = list(OCCUPATION_WEIGHTS.values())
    first_reg = date(2019, 1, 1)
    reg_span = (today - first_reg).days
    seen_serial: dict[tuple[str, date, str], int] = {}
    profiles: list[tuple[int, str, date, int | None]] = []

    def rows() -> Any:
        for pid in range(1, args.participants + 1):
            prov = rng.choices(provinces, prov_weights)[0]
            village = rng.choice(villages[prov])
            sex = "F" if rng.random() < 0.38 else "M"
            born = date(1962, 1, 1) + timedelta(days=rng.randrange(0, 365 * 44))
            prefix = rng.choice(districts[prov]).replace(".", "")
            key = (prefix, born, sex)
            serial = seen_serial.get(key, 0) + 1
            seen_serial[key] = serial
            nik = build_nik(prefix, born, sex, serial)
            base = f"{KPJ_BASE + pid:010d}"
            # registrations lean to recent years (the programme grew fast)
            reg_day = first_reg + timedelta(days=int(reg_span * rng.random() ** 0.6))
            created = datetime(reg_day.year, reg_day.month, reg_day.day, 3, tzinfo=UTC)
            channel = rng.choices(["agent", "branch", "partner", "self"], [60, 15, 15, 10])[0]
            sponsored = channel == "partner" and rng.random() < 0.55
            occ = rng.choices(occupations, occ_weights)[0]
            profile = "monthly" if sponsored else rng.choices(*zip(*PROFILES, strict=True))[0]
            profiles.append((pid, profile, reg_day.replace(day=1),
                             rng.choice(sponsors) if sponsored else None))  # fmt: skip
            yield (
                pid, *nik_columns(nik), base + luhn_check_digit(base),
                f"{rng.choice(FIRST)} {rng.choice(LAST)}", born, sex,
                f"+628{rng.randrange(1_000_000_000, 9_999_999_999)}", "",
                "en" if rng.random() < 0.03 else "id", village, prov, village[:5],
                f"Jl. Desa No. {rng.randrange(1, 300)}", occ,
                rng.choices(levels, level_weights)[0], rng.random() < 0.2, channel,
                rng.choice(agents[prov]) if channel == "agent" else None,
                branches[prov].pk if channel in ("agent", "branch") else None,
                rng.choice(sponsors) if channel == "partner" else None,
                True, rng.random() < 0.9, created, created,
            )  # fmt: skip

    with transaction.atomic(), connection.cursor() as cur:
        raw = cur.cursor
        cols = ", ".join(PARTICIPANT_COLUMNS)
        with raw.copy(f"COPY enrollment_participant ({cols}) FROM STDIN") as copy:
            for row in rows():
                copy.write_row(row)
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('enrollment_participant', 'id'), %s)",
            [args.participants],
        )
        cur.execute(
            "CREATE TABLE gen_profile (participant_id bigint PRIMARY KEY, profile text, "
            "start_month date, sponsor_id bigint)"
        )
        with raw.copy("COPY gen_profile FROM STDIN") as copy:
            for p in profiles:
                copy.write_row(p)
    log(f"{args.participants:,} participants (COPY)", started)

    # --- monthly amounts from the real quote function ------------------------------------------
    first_month = min(window_start, date(2019, 1, 1))
    amounts = []  # computed before COPY starts: no query may run on a connection inside COPY
    month = window_start
    while month <= add_months(this_month, 6):
        for income in levels:
            for jht in (False, True):
                for sector in set(sectors.values()):
                    q = quote_contribution(
                        declared_income=income,
                        programmes=["JKK", "JKM", "JHT"] if jht else ["JKK", "JKM"],
                        months=1, first_month=month, sector=sector,
                    )  # fmt: skip
                    amounts.append((month, income, jht, sector, q.total))
        month = add_months(month, 1)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE gen_amount (month date, income bigint, jht boolean, sector text, "
            "amount bigint, PRIMARY KEY (month, income, jht, sector))"
        )
        with cur.cursor.copy("COPY gen_amount FROM STDIN") as copy:
            for row in amounts:
                copy.write_row(row)
    del first_month
    log("amount table from quote_contribution", started)

    # --- payments: one row per payment event, set-based -----------------------------------------
    # Each profile pays a pattern of (period_start, months) events within the window, from the
    # later of registration month and window start. Events for months not yet due are allowed
    # only for advance payers.
    events_sql = """
    CREATE TABLE gen_event AS
    WITH base AS (
      SELECT g.participant_id, g.profile, g.sponsor_id,
             greatest(g.start_month, %(window)s::date) AS first_m,
             p.declared_income, p.jht, o.sector,
             (abs(hashtext(g.participant_id::text)) %% 7) AS h
      FROM gen_profile g
      JOIN enrollment_participant p ON p.id = g.participant_id
      JOIN enrollment_occupation o ON o.code = p.occupation_id
    ), months AS (
      SELECT b.*, m::date AS m,
             ((extract(year FROM m) - extract(year FROM b.first_m)) * 12
              + extract(month FROM m) - extract(month FROM b.first_m))::int AS k
      FROM base b, generate_series(b.first_m, %(this)s::date, interval '1 month') AS m
    )
    SELECT participant_id, profile, sponsor_id, declared_income, jht, sector, m AS period_start,
           CASE profile
             WHEN 'advance' THEN 3 + h %% 4
             WHEN 'late' THEN 2
             ELSE 1 END AS months
    FROM months
    WHERE CASE profile
            WHEN 'monthly' THEN true
            WHEN 'advance' THEN k %% (3 + h %% 4) = 0
            WHEN 'late' THEN k %% 2 = 0 AND m < %(this)s::date
            WHEN 'returning' THEN k < 3 OR k >= 8 + h
            WHEN 'stopped' THEN k < 2 + h %% 4
          END
    """
    payments_sql = """
    INSERT INTO contributions_payment (participant_id, amount, months, period_start, payer,
        channel, reference, paid_at, sponsor_id, reactivation, created_at)
    SELECT e.participant_id,
           (SELECT sum(a.amount) FROM gen_amount a
             WHERE a.income = e.declared_income AND a.jht = e.jht AND a.sector = e.sector
               AND a.month >= e.period_start
               AND a.month < e.period_start + make_interval(months => e.months)),
           e.months, e.period_start,
           CASE WHEN e.sponsor_id IS NULL THEN 'participant' ELSE 'sponsor' END,
           CASE WHEN e.sponsor_id IS NOT NULL THEN 'partner'
                ELSE (ARRAY['bank','retail','ewallet','agent'])[1 + e.participant_id %% 4] END,
           'GEN-' || e.participant_id || '-' || to_char(e.period_start, 'YYYYMM'),
           least(e.period_start + (CASE WHEN e.profile = 'late' THEN 40 ELSE 9 END)
                   * interval '1 day' + (e.participant_id %% 5) * interval '1 day',
                 now() - interval '1 hour'),
           e.sponsor_id,
           false,
           now()
    FROM gen_event e
    ORDER BY e.participant_id, e.period_start
    """
    batches_sql = """
    INSERT INTO contributions_sponsorbatch (sponsor_id, reference, participant_months,
        row_count, total_amount, paid_at, created_at)
    SELECT sponsor_id, 'GENBATCH-' || sponsor_id || '-' || to_char(period_start, 'YYYYMM'),
           sum(months), count(*), sum(amount), min(paid_at), now()
    FROM contributions_payment WHERE sponsor_id IS NOT NULL AND reference LIKE 'GEN-%%'
    GROUP BY sponsor_id, period_start
    """
    link_batches_sql = """
    UPDATE contributions_payment p SET batch_id = b.id
    FROM contributions_sponsorbatch b
    WHERE p.sponsor_id = b.sponsor_id AND p.reference LIKE 'GEN-%%'
      AND b.reference = 'GENBATCH-' || p.sponsor_id || '-' || to_char(p.period_start, 'YYYYMM')
    """
    ledger_sql = """
    INSERT INTO contributions_ledgerentry (participant_id, kind, amount, months, period_start,
        payment_id, reason, created_at)
    SELECT participant_id, 'payment', amount, months, period_start, id, '', paid_at
    FROM contributions_payment WHERE reference LIKE 'GEN-%%' ORDER BY id
    """
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(events_sql, {"window": window_start, "this": this_month})
        cur.execute("ANALYZE gen_event")
        cur.execute(payments_sql, {})
        n_payments = cur.rowcount
        cur.execute(batches_sql, {})
        n_batches = cur.rowcount
        cur.execute(link_batches_sql, {})
    log(f"{n_payments:,} payments, {n_batches:,} sponsor batches", started)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(ledger_sql, {})
        n_ledger = cur.rowcount
    log(f"{n_ledger:,} ledger rows", started)

    # --- coverage: derived from the ledger with gaps-and-islands ---------------------------------
    coverage_sql = """
    INSERT INTO contributions_coverage (participant_id, status, start_month, paid_through,
        active_since, lapsed_since, continuous_months, reactivations, balance, updated_at)
    WITH pay AS (
      SELECT participant_id, period_start, months, amount,
             (period_start + make_interval(months => months - 1))::date AS last_m,
             lag((period_start + make_interval(months => months - 1))::date)
               OVER (PARTITION BY participant_id ORDER BY period_start) AS prev_last
      FROM contributions_payment
    ), marked AS (
      SELECT *, CASE WHEN prev_last IS NULL
                       OR period_start = (prev_last + interval '1 month')::date
                     THEN 0 ELSE 1 END AS gap
      FROM pay
    ), island AS (
      SELECT *, sum(gap) OVER (PARTITION BY participant_id ORDER BY period_start) AS run
      FROM marked
    ), per AS (
      SELECT participant_id, max(last_m) AS paid_through, max(run) AS reactivations,
             sum(amount) AS balance
      FROM island GROUP BY participant_id
    ), last_run AS (
      SELECT i.participant_id, min(i.period_start) AS active_since,
             sum(i.months) AS continuous_months
      FROM island i JOIN per USING (participant_id)
      WHERE i.run = per.reactivations GROUP BY i.participant_id
    )
    SELECT g.participant_id,
           CASE WHEN per.paid_through >= %(this)s THEN 'active' ELSE 'grace' END,
           g.start_month, per.paid_through, lr.active_since, NULL,
           coalesce(lr.continuous_months, 0), coalesce(per.reactivations, 0),
           coalesce(per.balance, 0), now()
    FROM gen_profile g
    LEFT JOIN per USING (participant_id)
    LEFT JOIN last_run lr USING (participant_id)
    """
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(coverage_sql, {"this": this_month})
    moved = refresh_coverage_statuses(as_of=today)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE contributions_payment p SET reactivation = true FROM contributions_payment q "
            "WHERE q.participant_id = p.participant_id AND q.period_start < p.period_start "
            "AND (q.period_start + make_interval(months => q.months))::date < p.period_start "
            "AND NOT EXISTS (SELECT 1 FROM contributions_payment r "
            "  WHERE r.participant_id = p.participant_id AND r.period_start > q.period_start "
            "  AND r.period_start < p.period_start)"
        )
        cur.execute("DROP TABLE gen_event, gen_amount")
        cur.execute("ANALYZE")
    log(f"coverage rows; status refresh {moved}", started)

    with connection.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM contributions_coverage GROUP BY 1 ORDER BY 1")
        statuses = dict(cur.fetchall())
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cur.fetchone()[0]
        cur.execute(
            "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "WHERE relname IN ('enrollment_participant', 'contributions_payment', "
            "'contributions_ledgerentry', 'contributions_coverage') ORDER BY 1"
        )
        tables = cur.fetchall()
    log(f"done: statuses {statuses}; database {size}; " + ", ".join(f"{t} {s}" for t, s in tables),
        started)  # fmt: skip


if __name__ == "__main__":
    main()
