"""Every secret with a published development default is refused in production: `check --deploy`
reports it, and with DEBUG off the web server, the Celery worker and beat do not start."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.bpjsportal.production import production_env
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

# setting -> the check that reports its development default (settings.DEV_<setting>)
DEVELOPMENT_DEFAULTS = {
    "REMINDER_CALLBACK_SECRET": "contributions.E001",
    "REMINDER_GATEWAY_KEY": "contributions.E001",
    "BILL_CODE_KEY": "contributions.E001",
    "CHANNEL_SIGNING_KEY": "contributions.E001",
    "NIK_HMAC_KEY": "enrollment.E002",
    "NIK_ENCRYPTION_KEYS": "enrollment.E003",
    "KPJ_KEY": "enrollment.E005",
}


def development(name: str) -> dict[str, str]:
    return {name: getattr(settings, f"DEV_{name}")}


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run a process that must stop by itself; killed (and failing the test) if it does not."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{cmd[:4]} did not stop by itself: it started\n{out[-2000:]}")
    return proc.returncode, out


@pytest.mark.parametrize("name", DEVELOPMENT_DEFAULTS)
def test_check_deploy_refuses_each_development_secret(name: str) -> None:
    code, out = run(
        [sys.executable, "manage.py", "check", "--deploy"], production_env(**development(name))
    )
    assert code != 0
    assert DEVELOPMENT_DEFAULTS[name] in out and name in out


def test_check_deploy_refuses_an_empty_callback_secret() -> None:
    code, out = run(
        [sys.executable, "manage.py", "check", "--deploy"],
        production_env(REMINDER_CALLBACK_SECRET=""),
    )
    assert code != 0 and "REMINDER_CALLBACK_SECRET is empty" in out


def test_production_refuses_the_development_secret_key() -> None:
    code, out = run(
        [sys.executable, "manage.py", "check"], production_env(SECRET_KEY=settings.DEV_SECRET_KEY)
    )
    assert code != 0 and "SECRET_KEY must be set, and not to the development key" in out


@pytest.mark.parametrize("name", ["REMINDER_CALLBACK_SECRET", "NIK_ENCRYPTION_KEYS"])
def test_gunicorn_does_not_start_on_a_development_secret(name: str) -> None:
    """As docs/operations.md starts it; the master stops when its workers cannot boot."""
    code, out = run(
        [sys.executable, "-m", "gunicorn", "bpjsportal.wsgi", "-w", "1",
         "-b", f"127.0.0.1:{free_port()}"],
        production_env(**development(name)),
    )  # fmt: skip
    assert code != 0
    assert "Refusing to start with DEBUG off" in out and name in out


def test_celery_worker_does_not_start_on_a_development_secret() -> None:
    node = f"refused-{uuid.uuid4().hex[:6]}@localhost"
    code, out = run(
        [sys.executable, "-m", "celery", "-A", "bpjsportal", "worker", "--pool=solo",
         "-Q", f"refused-{uuid.uuid4().hex[:8]}", "-n", node, "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        production_env(**development("REMINDER_GATEWAY_KEY")),
    )  # fmt: skip
    assert code != 0
    assert "Refusing to start with DEBUG off" in out and "REMINDER_GATEWAY_KEY" in out


def test_celery_beat_does_not_start_on_a_development_secret() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        code, out = run(
            [sys.executable, "-m", "celery", "-A", "bpjsportal", "beat",
             "-s", str(Path(tmp) / "schedule")],
            production_env(**development("NIK_HMAC_KEY")),
        )  # fmt: skip
    assert code != 0
    assert "Refusing to start with DEBUG off" in out and "NIK_HMAC_KEY" in out
