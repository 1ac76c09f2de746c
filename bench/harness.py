"""The bench's servers and load: the one way a scenario starts the app under gunicorn (optionally
with the benchmark URLconf) or a Celery worker (with the bench's own settings and tasks), HTTP
clients in threads, latency percentiles. Databases, keys and results are in bench/common.py."""

from __future__ import annotations

import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, SERVER_ENV, free_port, percentile

BENCH = Path(__file__).resolve().parent

logging.getLogger("httpx").setLevel(logging.WARNING)  # not one log line per request


def database_url(default_name: str) -> str:
    """BENCH_DATABASE_URL (e.g. the shared 10M database) or a database of our own."""
    return os.environ.get("BENCH_DATABASE_URL") or (
        f"postgres://postgres@127.0.0.1:5432/{default_name}"
    )


def prepare_django(url: str) -> None:
    """Django configured on `url` (created, migrated, reference data loaded)."""
    os.environ["BENCH_DATABASE_URL"] = url
    os.environ.setdefault("API_THROTTLE_RATE", "")
    from bench.common import setup_django

    setup_django()


@contextmanager
def gunicorn(
    url: str, *, workers: int = 4, settings: str = "bpjsportal.settings", threads: int = 1
) -> Iterator[str]:
    """The app under gunicorn (sync workers, production settings: common.SERVER_ENV), on a
    free port."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": settings,
        **SERVER_ENV,
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "gunicorn", "bpjsportal.wsgi", "-w", str(workers)]
    if threads > 1:
        cmd += ["--threads", str(threads)]
    cmd += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "600"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/api/schema/", timeout=5)
                break
            except httpx.HTTPError:
                if server.poll() is not None:
                    raise RuntimeError("gunicorn exited") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@contextmanager
def celery_worker(
    url: str, *, queue: str, concurrency: int, settings: str = "bench.bench_settings"
) -> Iterator[str]:
    """A prefork Celery worker of the app on `url`, consuming only `queue`, with the bench's
    settings (they load bench/tasks.py, the no-op baseline); yields its node name once it
    answers a ping, and stops it (warm shutdown) on the way out."""
    from bpjsportal.celery import app

    node = f"bench-{queue}@{socket.gethostname()}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": settings}
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "bpjsportal", "worker"),
            *("-Q", queue, "--concurrency", str(concurrency)),
            *("-l", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            *("-n", f"bench-{queue}@%h"),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[node], timeout=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench Celery worker did not start")
        yield node
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def summary(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds of latencies in seconds (common.percentile; NaN if none)."""
    if not samples:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(percentile(samples, 95) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
    }


def client(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    return httpx.Client(base_url=base, headers=headers, timeout=300)


def run_clients(
    n_clients: int, work: Callable[[int], list[float]]
) -> tuple[list[float], float, list[BaseException]]:
    """Run work(i) in n_clients threads; their latencies, the wall time, and any exceptions."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    latencies: list[float] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(n_clients) as pool:
        futures = [pool.submit(work, i) for i in range(n_clients)]
        for f in futures:
            try:
                latencies.extend(f.result())
            except BaseException as exc:  # reported, not raised: the table shows errors
                errors.append(exc)
    return latencies, time.perf_counter() - start, errors


def admin_token(name: str) -> str:
    from enrollment.api.clients import create_api_client

    return str(create_api_client(name=name, scope="admin").token)


def partner_token(name: str, code: str) -> str:
    from enrollment.api.clients import create_api_client
    from enrollment.models import Partner

    partner, _ = Partner.objects.get_or_create(
        code=code, defaults={"name": f"Bench {code}", "kind": "bundle"}
    )
    return str(create_api_client(name=name, scope="partner", partner=partner).token)


def load() -> str:
    """The machine's 1-minute load average (other work on a shared machine skews figures)."""
    return f"{os.getloadavg()[0]:.1f}"


def with_defaults(parser: Any, args: Any) -> Any:
    """args (a Namespace, a dict or None, e.g. from bench/run.py) over the parser's defaults."""
    merged = parser.parse_args([])
    given = vars(args) if hasattr(args, "__dict__") else dict(args or {})
    for key, value in given.items():
        if value is not None:
            setattr(merged, key, value)
    return merged


def print_result(result: dict[str, Any]) -> None:
    """The scenario's rows as a Markdown table, then its notes (stdout only)."""
    rows = result["rows"]
    print(f"## {result['scenario']}\n")
    if rows:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for row in rows:
            print("| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |")
    print(f"\n{result['notes']}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


class ApiServer:
    """`gunicorn()` as an object for the suite's scenarios that call the API with urllib
    (participant import, payment posting); `.base` is http://127.0.0.1:<port>."""

    def __init__(self, url: str, workers: int = 4) -> None:
        self.url, self.workers = url, workers
        self.base = ""
        self._server: Any = None

    def __enter__(self) -> ApiServer:
        self._server = gunicorn(self.url, workers=self.workers)
        self.base = self._server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(*exc)

    def call(self, token: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """(status, parsed JSON body) of one request to this server."""
        return call(self.base, token, method, path, body, **headers)


def call(base: str, token: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """(status, parsed JSON body) of one API request with a token (header names in keyword
    arguments, `_` for `-`); for the scenarios that send requests one by one with urllib."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    req.add_header("Authorization", f"Token {token}")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k.replace("_", "-"), v)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310 - local server
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
