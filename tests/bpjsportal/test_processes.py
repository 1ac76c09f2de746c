"""The portal's processes (docs/operations.md, "Processes"): the Procfiles (honcho parses them and
they name the expected processes), gunicorn.conf.py (gunicorn loads it with bpjsportal.wsgi;
its access log is in the portal's log format), the systemd units (`systemd-analyze verify` and
`security` on copies installed in a temporary directory), and `make run`'s web process under
honcho: an HTTP answer, output prefixed with the process name, and Ctrl-C stopping all of it."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO

import pytest
from honcho.environ import parse_procfile

from bpjsportal import launcher
from tests.bpjsportal.production import HOST, production_env
from tests.conftest import _test_database_url
from tests.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("bpjsportal-web.service", "bpjsportal-worker.service", "bpjsportal-beat.service")
INSTALL_PATH = "/srv/bpjsportal"  # the units' install path (docs/operations.md)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NIK = "3273051708900001"


def procfile(name: str) -> dict[str, str]:
    return dict(parse_procfile((ROOT / name).read_text()).processes)


# --- Procfiles --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "processes"),
    [("Procfile", "web, worker, beat"), ("Procfile.dev", "web, worker, beat, gateway, channel")],
)
def test_honcho_finds_a_valid_procfile_with_the_expected_processes(
    name: str, processes: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "honcho", "check", "-f", name],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Valid procfile detected ({processes})" in result.stderr


def test_production_procfile_runs_gunicorn_with_its_config_and_one_beat() -> None:
    processes = procfile("Procfile")
    assert list(processes) == ["web", "worker", "beat"]
    assert processes["web"] == "gunicorn --config gunicorn.conf.py bpjsportal.wsgi"
    assert processes["worker"].startswith("celery -A bpjsportal worker")
    assert processes["beat"].startswith("celery -A bpjsportal beat")
    assert "--schedule var/celerybeat-schedule" in processes["beat"]


def test_dev_procfile_web_reloads_and_closes_its_database_connections() -> None:
    processes = procfile("Procfile.dev")
    web = processes["web"]
    assert "runserver" in web and "--noreload" not in web
    assert web.startswith("DB_CONN_MAX_AGE=0 ")  # launcher.start_web_server's docstring
    assert "-s var/celerybeat-schedule" in processes["beat"]
    assert "--credentials var/demo-channel.json" in processes["channel"]
    for fake in launcher.DEV_FAKES:
        assert "$DEV_PORTAL_URL/" in processes[fake]


def test_make_run_starts_the_fakes_only_without_a_real_gateway() -> None:
    dev = list(procfile("Procfile.dev"))
    assert launcher.dev_processes({}) == dev
    assert launcher.dev_processes({"REMINDER_GATEWAY_URL": "https://sms.example.id/"}) == [
        "web",
        "worker",
        "beat",
    ]


def test_make_runs_processes_get_debug_this_python_and_unbuffered_output() -> None:
    env = launcher.dev_env({"DEBUG": "0", "PATH": "/usr/bin", "OTHER": "kept"})
    assert env["DEBUG"] == "1"  # the settings' default is off
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert env["PYTHONUNBUFFERED"] == "1" and env["OTHER"] == "kept"


# --- gunicorn.conf.py -------------------------------------------------------------------------
def gunicorn_config(env: dict[str, str]) -> dict[str, str]:
    """gunicorn's resolved settings with gunicorn.conf.py (read from the working directory, as
    the Procfile and the web unit start it): `--print-config` as name -> value."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.findall(r"^(\w+)\s+= (.*)$", result.stdout, flags=re.MULTILINE)
    return dict(found)


def test_gunicorn_loads_its_config_and_the_portal_with_production_settings() -> None:
    """--check-config loads gunicorn.conf.py and then the app it names, bpjsportal.wsgi (whose
    start-up checks refuse development secrets with DEBUG off)."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config"],
        cwd=ROOT, env=production_env(DATABASE_URL=_test_database_url()),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    broken = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "bpjsportal.no_such_module"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert broken.returncode != 0  # the check does load the app


def test_gunicorn_config_defaults_and_environment() -> None:
    env = production_env()
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "WEB_TIMEOUT", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    env.pop("GUNICORN_CMD_ARGS", None)
    config = gunicorn_config(env)
    assert config["wsgi_app"] == "bpjsportal.wsgi"
    assert config["bind"] == "['127.0.0.1:8000']"
    assert config["workers"] == str(2 * (os.cpu_count() or 1) + 1)
    assert config["timeout"] == "60" and config["graceful_timeout"] == "30"
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert config["preload_app"] == "False"
    assert config["max_requests"] == "1000" and int(config["max_requests_jitter"]) > 0
    assert config["accesslog"] == "-"
    assert config["control_socket_disable"] == "True"
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert config["worker_tmp_dir"] == "/dev/shm"

    config = gunicorn_config(
        {**env, "HOST": "::", "PORT": "9123", "WEB_CONCURRENCY": "3", "WEB_TIMEOUT": "90",
         "FORWARDED_ALLOW_IPS": "10.0.0.5"}
    )  # fmt: skip
    assert config["bind"] == "['[::]:9123']"
    assert config["workers"] == "3" and config["timeout"] == "90"
    assert config["forwarded_allow_ips"] == "['10.0.0.5']"


def test_gunicorn_access_log_is_in_the_portal_format_with_the_request_id(tmp_path: Path) -> None:
    """With DEBUG off: one JSON object per line on stdout, the request's id (the one the client
    sent, returned in X-Request-ID) and the personal-data mask over the request line."""
    port = free_port()
    out = tmp_path / "stdout.log"
    err = tmp_path / "stderr.log"
    env = production_env(DATABASE_URL=_test_database_url(), PORT=str(port), WEB_CONCURRENCY="1")
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    request_id = f"procs-{uuid.uuid4().hex}"
    try:
        wait_port(port, up=True, timeout=60)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "GET", f"/health/live/?nik={NIK}", headers={"Host": HOST, "X-Request-ID": request_id}
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200
        assert response.headers["X-Request-ID"] == request_id
    finally:
        server.terminate()
        server.wait(timeout=40)
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert len(access) == 1, out.read_text() + err.read_text()
    line = access[0]
    assert set(line) >= {"time", "level", "logger", "request_id", "principal", "message"}
    assert line["request_id"] == request_id
    assert "GET /health/live/?nik=3273**********01 HTTP/1.1" in line["message"]
    assert " 200 " in line["message"]
    assert NIK not in out.read_text()
    # gunicorn's own lines (stderr, as the settings' console handler) in the same format
    booted = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("Listening at:") for line in booted), err.read_text()


# --- systemd units ------------------------------------------------------------------------------
def systemd_analyze() -> str:
    if SYSTEMD_ANALYZE is None:
        pytest.fail(
            "systemd-analyze is missing: install Debian's systemd package "
            "(sudo apt-get install systemd); the unit files are checked with it"
        )
    return SYSTEMD_ANALYZE


def install_units(root: Path, target: Path) -> list[Path]:
    """deploy/systemd's units with their install path replaced by `root`, whose
    .venv/bin/{gunicorn,celery} are this interpreter's: `verify` checks that each ExecStart
    names an executable."""
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (root / "var").mkdir()
    for program in ("gunicorn", "celery"):
        real = Path(sys.executable).parent / program
        assert os.access(real, os.X_OK), f"{real} is missing"
        (bin_dir / program).symlink_to(real)
    target.mkdir()
    units = []
    for unit in sorted(UNITS.iterdir()):
        text = unit.read_text()
        assert INSTALL_PATH in text or unit.suffix == ".target", unit.name
        (target / unit.name).write_text(text.replace(INSTALL_PATH, str(root)))
        units.append(target / unit.name)
    return units


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    units = install_units(tmp_path / "srv", tmp_path / "units")
    assert sorted(u.name for u in units) == sorted([*SERVICES, "bpjsportal.target"])
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120
    )
    # verify exits 0 on an unknown key or a bad value ("..., ignoring."): any line is a failure
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    # ...and it does see a mistake here (no running systemd needed)
    broken = tmp_path / "units" / "bpjsportal-web.service"
    broken.write_text(broken.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    result = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert "Unknown key 'ProtectSytem'" in result.stdout + result.stderr


def test_systemd_units_are_hardened(tmp_path: Path) -> None:
    """`systemd-analyze security`: each service's exposure at most 2.0 ("OK")."""
    analyze = systemd_analyze()
    units = install_units(tmp_path / "srv", tmp_path / "units")
    services = [str(u) for u in units if u.suffix == ".service"]
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", *services],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert result.stdout.count("Overall exposure level") == len(SERVICES)


def unit_settings(name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_service_runs_the_procfile_process_as_its_user_with_var_writable(
    name: str,
) -> None:
    unit = unit_settings(name)
    process = name.removeprefix("bpjsportal-").removesuffix(".service")
    command = unit["ExecStart"][0]
    command = command.replace(f"{INSTALL_PATH}/.venv/bin/", "").replace(f"{INSTALL_PATH}/", "")
    assert command == procfile("Procfile")[process]  # the same process as the Procfile's
    assert unit["User"] == ["bpjsportal"] and unit["WorkingDirectory"] == [INSTALL_PATH]
    assert unit["EnvironmentFile"] == ["/etc/bpjsportal/bpjsportal.env"]
    assert unit["Restart"] == ["always"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["PrivateTmp"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == [f"{INSTALL_PATH}/var"]
    assert unit["PartOf"] == ["bpjsportal.target"]
    assert unit["WantedBy"] == ["bpjsportal.target"]


def test_the_beat_unit_says_exactly_one_per_deployment() -> None:
    text = (UNITS / "bpjsportal-beat.service").read_text()
    assert "EXACTLY ONE PER DEPLOYMENT" in text
    assert unit_settings("bpjsportal-beat.service")["Description"] == [
        "BPU portal Celery beat (exactly one per deployment)"
    ]


# --- make run's web process under honcho --------------------------------------------------------
class Output:
    """Reads a process's output lines as they come (the pipe never fills)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.1)
        raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(self.lines)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.django_db
def test_make_runs_web_process_answers_with_prefixed_output_and_ctrl_c_stops_it() -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "DEBUG": "0"}
    honcho = launcher.start_web_server(
        "127.0.0.1", str(port), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = Output(honcho)
    web_pid = 0
    try:
        web_pid = int(
            output.wait_for(r"^\d\d:\d\d:\d\d system\s+\| web\.1 started \(pid=(\d+)\)")[1]
        )
        wait_port(port, up=True, timeout=60)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/health/live/")
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 200 and json.loads(body)["status"] == "ok"
        # runserver's lines, each prefixed with the time and the process name
        output.wait_for(r"^\d\d:\d\d:\d\d web\.1\s+\| .*Watching for file changes")  # reloads
        output.wait_for(r"^\d\d:\d\d:\d\d web\.1\s+\| .*GET /health/live/ HTTP/1\.1\" 200")
        # DEBUG=1 whatever the environment said (`make run`: seed_demo refuses DEBUG off):
        # Django's technical 404 page
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/no-such-page/")
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 404 and b"URLconf" in body
        assert _group_alive(web_pid)
        honcho.send_signal(signal.SIGINT)  # Ctrl-C
        code = honcho.wait(timeout=30)
    finally:
        if honcho.poll() is None:
            honcho.kill()
            honcho.wait()
            if web_pid and _group_alive(web_pid):
                os.killpg(web_pid, signal.SIGKILL)
    text = output.text()
    assert code == 130, text[-3000:]  # honcho: stopped by SIGINT
    assert "SIGINT received" in text and "web.1 stopped" in text
    # runserver and its reloading parent got SIGTERM (honcho signals the process group): gone
    deadline = time.monotonic() + 10
    while _group_alive(web_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(web_pid)
    wait_port(port, up=False, timeout=10)
