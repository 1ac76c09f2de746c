"""Registrations per second through `register_participant` vs plain INSERTs of the same rows.

Both run in the same process against the same PostgreSQL, one transaction per row (an agent's
registration commits on its own). The baseline table is a copy of enrollment_participant with the
same indexes and constraints, so the ratio shows what the service's rules, look-ups and KPJ number
cost on top of the bare write.

    .venv/bin/python -m bench.bench_registration --n 2000
"""

from __future__ import annotations

import argparse
import random
import time

from bench.common import fresh_identities, machine, now, setup_django


def _letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
        if n == 0:
            return out.capitalize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_django()

    from django.db import connection, transaction

    from enrollment.models import Participant, Region
    from enrollment.pii import nik_columns
    from enrollment.services import register_participant

    rng = random.Random(args.seed)
    villages = list(
        Region.objects.filter(level=4, code__startswith="32.73.").values_list("code", flat=True)
    )
    rows = []
    used: set[str] = {p.nik for p in Participant.objects.only("nik_encrypted")}
    identities = fresh_identities(rng, used)
    while len(rows) < args.n:
        nik, born, sex = next(identities)
        rows.append(
            dict(nik=nik, full_name="Pekerja " + _letters(len(rows)), birth_date=born, sex=sex,
                 phone=f"0812{rng.randrange(10_000_000, 99_999_999)}",
                 village=rng.choice(villages), address="Jl. Benchmark 1",
                 occupation="petani", declared_income=1_000_000, channel="self",
                 consent_data=True)
        )  # fmt: skip

    # Baseline: plain INSERTs of the same rows into a copy of the table (same indexes).
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_participant")
        cur.execute("CREATE TABLE bench_participant (LIKE enrollment_participant INCLUDING ALL)")
        cur.execute("ALTER TABLE bench_participant ALTER COLUMN id DROP IDENTITY")
    sql = (
        "INSERT INTO bench_participant (id, nik_digest, nik_encrypted, kpj_number, full_name, "
        "birth_date, sex, phone, "
        "email, language, village_id, province_id, regency_id, address, occupation_id, "
        "declared_income, jht, channel, consent_data, consent_reminders, created_at, updated_at) "
        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,'','id',%s,%s,%s,%s,%s,%s,false,%s,true,false,now(),now())"
    )
    stored = [nik_columns(r["nik"]) for r in rows]  # the table holds the HMAC and ciphertext
    started = time.perf_counter()
    for i, r in enumerate(rows):
        chain = r["village"].split(".")
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [i + 1, *stored[i], f"{i + 1:011d}", r["full_name"], r["birth_date"],
                              r["sex"], "+62" + r["phone"][1:], r["village"], chain[0],
                              ".".join(chain[:2]), r["address"], r["occupation"],
                              r["declared_income"], r["channel"]])  # fmt: skip
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    for r in rows:
        register_participant(**r)
    service = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_participant")

    base_rate, svc_rate = args.n / baseline, args.n / service
    print(f"# registration benchmark {now()} — {machine()}")
    print(f"rows: {args.n}")
    print(f"plain INSERT baseline: {base_rate:,.0f} rows/s")
    print(f"register_participant:  {svc_rate:,.0f} rows/s")
    print(f"ratio service/baseline: {svc_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
