"""The dependency sets of pyproject.toml and their locks (docs/operations.md "Dependencies"):
each lock is up to date with pyproject.toml and pins every package with its hashes; the
embedded servers are development-only and marked for the Pythons that have their wheels; and
the production lock installs and loads on every supported Python this machine has."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bpjsportal import launcher

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(name: str) -> str:
    """The normalized name of a distribution ('coverage[toml]' -> 'coverage')."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def pins(lock: str) -> dict[str, str]:
    """{name: 'name==version ; marker'} of a lock; every pin must carry a hash."""
    text = (ROOT / lock).read_text()
    found = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1]):
        first = entry.splitlines()[0]
        if re.match(r"^[A-Za-z0-9]", first):
            assert "==" in first and "--hash=sha256:" in entry, f"{lock}: {first}"
            found[_name(first.split("==")[0])] = first.rstrip(" \\")
    return found


def test_each_lock_holds_what_pyproject_asks_for_with_hashes() -> None:
    prod, dev = pins(launcher.PROD_LOCK), pins(launcher.DEV_LOCK)
    extras = PROJECT["optional-dependencies"]
    for requirement in map(Requirement, PROJECT["dependencies"]):
        assert _name(requirement.name) in prod, f"{requirement}: run `make lock`"
    for requirement in map(Requirement, extras["dev"] + extras["local"]):
        assert _name(requirement.name) in dev, f"{requirement}: run `make lock`"
        assert _name(requirement.name) not in prod, f"{requirement} is development-only"
    # production and development run the same version of every package they share
    assert {name: re.sub(r"\[.*\]", "", dev[name].split(" ;")[0]) for name in prod} == prod


def test_the_embedded_servers_are_locked_for_the_pythons_that_have_their_wheels() -> None:
    local = {
        _name(Requirement(r).name): Requirement(r)
        for r in PROJECT["optional-dependencies"]["local"]
    }
    dev_in = [
        Requirement(line)
        for line in (ROOT / "requirements/dev.in").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    ]
    assert {_name(r.name): str(r) for r in dev_in} == {n: str(r) for n, r in local.items()}
    dev = pins(launcher.DEV_LOCK)
    for name, requirement in local.items():
        assert requirement.marker is not None
        assert dev[name].endswith(f"; {requirement.marker}".replace("'", '"')), dev[name]


def test_the_supported_pythons_are_stated_alike() -> None:
    stated = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert stated == list(launcher.SUPPORTED_PYTHONS)
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    assert "Python 3.11, 3.12 and 3.13" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("version", [v for v in launcher.SUPPORTED_PYTHONS if v != "3.11"])
def test_the_production_lock_installs_and_loads_on_each_supported_python(version: str) -> None:
    """The install of production with the other supported Pythons this machine has (3.11 is
    the production smoke test's, tests/bpjsportal/test_production_smoke.py). A fresh clone pays
    about a minute per Python (PyPI downloads), cached under var/venvs/ afterwards."""
    python = launcher.find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    venv_python = str(launcher.production_venv(python) / "bin" / "python")
    env = {**os.environ, "DEBUG": "1"}
    out = subprocess.run(
        [venv_python, "manage.py", "check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
