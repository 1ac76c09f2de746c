"""The static and dependency gates of `make test` (bpjsportal/launcher.py): bandit runs with the
project's reviewed skips and still finds a real problem; pip-audit fails closed when it cannot
reach the vulnerability service, and PIP_AUDIT_OFFLINE=1 turns that into a loud skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpjsportal import launcher

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bandit_with_the_project_config_still_reports_real_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import hashlib, subprocess, pickle\n"
        "def f(cmd, data):\n"
        "    subprocess.call(cmd, shell=True)\n"
        "    pickle.loads(data)\n"
        "    return hashlib.md5(data).hexdigest()\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-c", str(ROOT / "pyproject.toml"), "-f", "csv",
         str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert {"B602", "B301", "B324"} <= {line.split(",")[2] for line in out.stdout.splitlines()[1:]}


def test_the_test_command_runs_bandit_and_pip_audit() -> None:
    source = Path(launcher.__file__).read_text()
    assert '"-m", "bandit"' in source and "audit_dependencies()" in source.split("def test(")[1]


def test_pip_audit_fails_closed_without_the_vulnerability_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every request to PyPI goes to a closed port: the service is unreachable
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("PIP_AUDIT_OFFLINE", raising=False)
    assert launcher.audit_dependencies() is False
    assert "failed closed" in capsys.readouterr().out
    monkeypatch.setenv("PIP_AUDIT_OFFLINE", "1")
    assert launcher.audit_dependencies() is True
    assert "DEPENDENCY AUDIT NOT DONE" in capsys.readouterr().out
