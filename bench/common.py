"""Shared set-up for benchmarks: a database of their own, Django configured, a results writer."""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database: str = "bpjsportal_bench") -> None:
    """Point Django at a benchmark database (created, migrated, reference data loaded)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    if "BENCH_DATABASE_URL" in os.environ:
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    else:
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    from bpjsportal.launcher import _ensure_database_exists

    _ensure_database_exists(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)


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


def use_database(url: str, *, migrate: bool = False) -> None:
    """Point Django at `url` (an existing database) and set it up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
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


class ApiServer:
    """gunicorn serving the project against `url` (sync workers, throttling off) as a context
    manager; `.base` is http://127.0.0.1:<port>."""

    def __init__(self, url: str, workers: int = 4) -> None:
        self.url, self.workers = url, workers
        self.base = ""
        self.proc: Any = None

    def __enter__(self) -> ApiServer:
        import subprocess
        import time
        import urllib.request

        port = free_port()
        env = {**os.environ, "DATABASE_URL": self.url, **SERVER_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "bpjsportal.wsgi", "-w", str(self.workers),
             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "600"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/api/schema/", timeout=5)  # noqa: S310
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.terminate()
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    def call(self, token: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """(status, parsed JSON body)."""
        import json
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Token {token}")
        req.add_header("Content-Type", "application/json")
        for k, v in headers.items():
            req.add_header(k.replace("_", "-"), v)
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310 - local server
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
