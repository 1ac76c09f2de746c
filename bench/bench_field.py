"""Scenario 10: the field app on a slow network - the shell's size and the time until the
registration form is usable, in Debian's Chromium throttled to 400 kbit/s with 400 ms latency
(Chrome DevTools' network emulation), on the first visit and from the cache; the baseline, in
the same run and the same throttle, is loading a bare 1-byte static file.

    .venv/bin/python -m bench --size 10k --only 10 --no-write

The app runs as in production (gunicorn, DEBUG off, `collectstatic` with WhiteNoise's compressed
hashed files, into a temporary STATIC_ROOT). An agent of the data set's first branch is made
(or reused) in the data set; its session cookie is handed to the browser. "Usable" = the
registration screen shown with its occupation and income lists filled from the reference data.
Writes: one benchmark agent (user, staff profile), its field device and API client.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, SERVER_ENV, ms, ratio, run_alone, use_database
from bench.harness import gunicorn

THROTTLE = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 50_000,
    "uploadThroughput": 50_000,
}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip
USABLE = (
    "() => !document.querySelector('#s-register').hidden"
    " && document.querySelectorAll('#r-occupation option').length > 1"
    " && document.querySelectorAll('#r-income option').length > 1"
)


def _agent_session() -> tuple[str, str]:
    """A benchmark agent's session cookie (name, value), made in the data set."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from enrollment.models import Branch, StaffProfile

    user, _created = get_user_model().objects.get_or_create(username="bench_field_agent")
    branch = Branch.objects.order_by("code").first()
    if branch is None:
        raise RuntimeError("the data set has no branch")
    StaffProfile.objects.get_or_create(
        user=user, defaults={"role": "agent", "branch": branch, "agent_code": "BENCH-FIELD"}
    )
    client = Client()
    client.force_login(user)
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def _collectstatic(static_root: str) -> None:
    env = {**os.environ, **SERVER_ENV, "STATIC_ROOT": static_root}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip


def shell_bytes() -> tuple[int, int]:
    """(raw, gzip -9) bytes of the shell's files as the service worker keeps them (the HTML as
    rendered)."""
    from django.contrib.staticfiles import finders
    from django.test import Client

    from contributions.field.views import SHELL_ASSETS

    blobs = [Client().get("/field/").content, Client().get("/field/manifest.webmanifest").content]
    for name in SHELL_ASSETS:
        blobs.append(Path(str(finders.find(name))).read_bytes())
    return sum(len(b) for b in blobs), sum(len(gzip.compress(b, 9)) for b in blobs)


def _time_to(page: Any, url: str, predicate: str) -> float:
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(predicate, timeout=60_000, polling=50)
    return time.perf_counter() - start


def _measure(base: str, cookie: tuple[str, str], repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"baseline": [], "first": [], "cached": [], "bytes": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 360, "height": 740})
            context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base}])
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
            received: list[int] = []
            cdp.on(
                "Network.loadingFinished",
                lambda e, got=received: got.append(int(e["encodedDataLength"])),
            )
            cdp.send("Network.emulateNetworkConditions", THROTTLE)
            out["baseline"].append(
                _time_to(page, f"{base}/static/field/bench-1b.txt", "() => true")
            )
            received.clear()
            out["first"].append(_time_to(page, f"{base}/field/#register", USABLE))
            out["bytes"].append(float(sum(received)))
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=60_000)
            page.wait_for_selector("body[data-area=ready]", timeout=120_000, state="attached")
            # From the cache: a new tab (a cold start of the page, the shell from the service
            # worker, the data from IndexedDB), on the same throttled network.
            tab = context.new_page()
            tab_cdp = context.new_cdp_session(tab)
            tab_cdp.send("Network.enable")
            tab_cdp.send("Network.emulateNetworkConditions", THROTTLE)
            out["cached"].append(_time_to(tab, f"{base}/field/#register", USABLE))
            context.close()
        browser.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_database(args.database_url)
    raw, packed = shell_bytes()
    cookie = _agent_session()
    repeat = 1 if args.quick else 3
    one_byte = ROOT / "static" / "field" / "bench-1b.txt"
    with tempfile.TemporaryDirectory() as static_root:
        one_byte.write_text("1")
        try:
            _collectstatic(static_root)
        finally:
            one_byte.unlink()
        os.environ["STATIC_ROOT"] = static_root
        with gunicorn(args.database_url, workers=2) as base:
            got = _measure(base, cookie, repeat)
    base_t = statistics.median(got["baseline"])
    first, cached = statistics.median(got["first"]), statistics.median(got["cached"])
    rows = [
        {"measure": "bare 1-byte file (baseline)", "median": ms(base_t), "target": "",
         "ratio": "1.000"},
        {"measure": "registration form usable, first visit", "median": ms(first),
         "target": "≤ 5 s", "ratio": ratio(first, base_t)},
        {"measure": "registration form usable, from the cache", "median": ms(cached),
         "target": "≤ 1 s", "ratio": ratio(cached, base_t)},
    ]  # fmt: skip
    notes = (
        f"Shell (HTML, manifest, CSS, 4 scripts, 2 icons): {raw / 1024:.1f} KB raw, "
        f"{packed / 1024:.1f} KB gzip -9 (budget 150 KB). First visit transferred "
        f"{statistics.median(got['bytes']) / 1024:.1f} KB on the wire (shell, reference data; "
        f"compressed by WhiteNoise/gunicorn as served). Chromium throttled to 400 kbit/s down "
        f"and up, 400 ms latency; {repeat} run(s), medians; ratio = time / baseline time."
    )
    return {"scenario": "10. Field app on a slow network", "rows": rows, "notes": notes}


if __name__ == "__main__":
    run_alone(run)
