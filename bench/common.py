"""The bench's data side, shared by every scenario: creating or choosing the database
(ensure_database, setup_django, use_database, dataset_url), the benchmark-only keys the servers
and the generator share, test rows, and the results (ScenarioResult, percentile, ms, ratio).
Servers and load are in bench/harness.py."""

from __future__ import annotations

import math
import os
import platform
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent


def setup_django(database: str = "bpjsportal_bench") -> None:
    """Point Django at a benchmark database (created, migrated, reference data loaded)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    # development settings in the benchmark's own process (DEBUG is off unless asked for); the
    # servers it starts run with DEBUG off and their own keys (SERVER_ENV below)
    os.environ.setdefault("DEBUG", "1")
    if "BENCH_DATABASE_URL" in os.environ:
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    else:
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)


def ensure_database(url: str, *, fresh: bool = False) -> None:
    """Create the database `url` names if missing (dropped first, sessions and all, when `fresh`):
    every scenario's database goes through here, on the server's `postgres` database."""
    from dj_database_url import parse
    from psycopg import sql

    from bpjsportal.launcher import admin_connection

    name = parse(url)["NAME"]
    with admin_connection(url) as admin:
        if fresh:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fresh_identities(rng: random.Random, used: set[str]) -> Iterator[tuple[str, date, str]]:
    """Endless (nik, birth date, sex) with valid NIKs of Kota Bandung not in `used` (which it
    extends), drawn from `rng`: the registration scenarios' workers."""
    from enrollment.nik import build_nik

    while True:
        born = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
        sex = rng.choice("MF")
        nik = build_nik("327305", born, sex, rng.randrange(1, 9999))
        if nik in used:
            continue
        used.add(nik)
        yield nik, born, sex


def participant_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """N registration bodies for the participants API with distinct valid NIKs (deterministic
    per seed), shared by the API, concurrency, sync and soak scenarios."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    identities = fresh_identities(rng, set())
    while len(rows) < n:
        nik, born, sex = next(identities)
        rows.append(
            {
                "nik": nik,
                "full_name": "Pekerja Bench",
                "birth_date": born.isoformat(),
                "sex": sex,
                "phone": f"0812{rng.randrange(10_000_000, 99_999_999)}",
                "village": "32.73.05.1001",
                "address": "Jl. Benchmark 1",
                "occupation": "petani",
                "declared_income": 1_000_000,
                "consent_data": True,
            }
        )
    return rows


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {cpus} cores{mem}, Python {platform.python_version()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the suite interface ----------------------------------------------------------------------
# `bench/run.py` runs scenario modules one by one, each in a child process of its own (Django is
# set up once per process, and every scenario may point it at another database). A scenario
# module exposes
#
#     def run(args: argparse.Namespace) -> dict
#
# and returns a ScenarioResult: {"scenario": "2. Payment posting", "rows": [...], "notes": "..."}
# where every row is a dict with the same keys (the keys become the columns of the results table
# in docs/benchmarks.md, in insertion order; values are printed as they are, so format numbers
# in the scenario). Put the baseline measured in the same run in the rows and the ratio to it in
# a "ratio" column. `args` carries (see SuiteArgs):
#   size          "10k" | "1m" | "10m"
#   participants  10_000 | 1_000_000 | 10_000_000 (participants in the generated data set)
#   database_url  the generated data set at that size (postgres://...), already loaded
#   seed          the generator's seed
#   quick         True for a smoke run (fewer samples, smaller N where the scenario allows)
# A scenario that needs a fresh database of its own makes one named bench_<something> and
# drops it at the start of its run, never the generated data set. A scenario may write to the
# data set only through the project's services (so `manage.py check_ledger` still passes) and
# should remove rows it adds outside them.

SIZES = {"10k": 10_000, "1m": 1_000_000, "10m": 10_000_000}


class ScenarioResult(TypedDict):
    scenario: str
    rows: list[dict[str, Any]]
    notes: str


@dataclass
class SuiteArgs:
    size: str = "10k"
    participants: int = 10_000
    database_url: str = "postgres://postgres@127.0.0.1:5432/bench_10k"
    seed: int = 42
    quick: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def dataset_url(size: str) -> str:
    """The generated data set of a size: BENCH_DATABASE_URL if set, else bench10m / bench1m /
    bench10k on the local server."""
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    return f"postgres://postgres@127.0.0.1:5432/bench{size}"


def run_alone(run: Any) -> None:
    """A suite scenario run by hand (`python bench/bench_<name>.py --size 10k [--quick]`) on the
    generated data set of that size: its result printed as JSON instead of written to the doc."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=list(SIZES), default="10k")
    parser.add_argument("--quick", action="store_true")
    a = parser.parse_args()
    args = argparse.Namespace(size=a.size, participants=SIZES[a.size], quick=a.quick,
                              database_url=dataset_url(a.size), seed=42)  # fmt: skip
    print(json.dumps(run(args), indent=2, default=str))


def use_database(url: str, *, migrate: bool = False) -> None:
    """Point Django at `url` (an existing database) and set it up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    os.environ.setdefault("DEBUG", "1")  # as in setup_django
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def verified_client(user: Any) -> Any:
    """A Django test client logged in as `user` with the second factor passed, as
    `django_otp.login()` leaves the session after a correct TOTP code (admins must have one;
    bpjsportal/access.py)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _created = TOTPDevice.objects.get_or_create(
        user=user, name="benchmark", defaults={"confirmed": True}
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.3f}" if baseline else "n/a"


# --- a real HTTP server for API scenarios -------------------------------------------------------
# The app as in production (DEBUG off: no query log, no debug pages), over plain HTTP on
# loopback, without the API's rate limit (the benchmark is the only client).
SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
    "SECURE_SSL_REDIRECT": "0",
    "API_THROTTLE_RATE": "",
    "LOG_LEVEL": "WARNING",
}
# With DEBUG off the servers refuse every development secret (bpjsportal/startup.py): the
# benchmarks have keys of their own. The benchmark's own Django (the data generator, which
# encrypts NIKs and numbers KPJs; sync tokens, sessions) uses the same ones as its servers. A data
# set generated before these keys existed has its NIKs under the development key: regenerate it.
BENCH_SECRETS = {
    "SECRET_KEY": SERVER_ENV["SECRET_KEY"],
    "NIK_HMAC_KEY": "bench-only-nik-hmac-key-not-for-production-0123456789",
    "NIK_ENCRYPTION_KEYS": "bench1:YmVuY2gtb25seS1uaWstZW5jcnlwdGlvbi1rZXkhISE=",
    "KPJ_KEY": "bench-only-kpj-permutation-key-not-for-production",
    "REMINDER_GATEWAY_KEY": "bench-only-gateway-key",
    "REMINDER_CALLBACK_SECRET": "bench-only-callback-secret-not-for-production",
    "BILL_CODE_KEY": "bench-only-bill-code-permutation-key-not-for-production",
    "CHANNEL_SIGNING_KEY": "bench-only-channel-signing-master-key-not-for-production",
}
for _name, _value in BENCH_SECRETS.items():
    os.environ.setdefault(_name, _value)
    SERVER_ENV[_name] = os.environ[_name]
(ROOT / "var" / "static").mkdir(parents=True, exist_ok=True)  # STATIC_ROOT (whitenoise, DEBUG off)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
