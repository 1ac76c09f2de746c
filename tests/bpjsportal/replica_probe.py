"""Run by test_replica_integration.py in its own process, with DATABASE_URL = a primary and
REPLICA_DATABASE_URL = its streaming replica. Pauses WAL replay on the replica, changes the
year's target through the app, and records what the dashboard, the export, the progress API and
the target form show, and which connection served their queries. Prints one JSON object."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from reporting.models import Target  # noqa: E402

YEAR = 2031


def scalar(alias: str, sql: str, params: list[Any] | None = None) -> Any:
    with connections[alias].cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchone()[0]


XMAX = "SELECT txid_snapshot_xmax(txid_current_snapshot())"


def wait_until_replayed(timeout: float = 20.0) -> None:
    """Until the replica has replayed the primary's WAL up to now *and* its snapshots see every
    transaction the primary has finished: a standby's snapshot can lag its replay position by
    a moment (seen here: replay LSN equal to the primary's, the last commit not yet visible)."""
    lsn = scalar("default", "SELECT pg_current_wal_lsn()::text")
    xmax = int(scalar("default", XMAX))
    deadline = time.monotonic() + timeout
    while not (
        scalar("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
        and int(scalar("replica", XMAX)) >= xmax
    ):
        if time.monotonic() > deadline:
            sys.exit("the replica did not replay the primary's WAL in time")
        time.sleep(0.05)


def set_target(client: Client, value: int) -> int:
    response = client.post(f"/reports/targets/{YEAR}/", {"active_target": value, "note": "probe"})
    return response.status_code


def served(client: Client, url: str) -> tuple[Any, dict[str, list[str]]]:
    """GET url; the SQL each connection ran for it."""
    with (
        CaptureQueriesContext(connections["default"]) as on_primary,
        CaptureQueriesContext(connections["replica"]) as on_replica,
    ):
        response = client.get(url)
    return response, {
        "primary": [q["sql"] for q in on_primary.captured_queries],
        "replica": [q["sql"] for q in on_replica.captured_queries],
    }


def headline_target(html: str) -> str:
    marker = 'data-testid="headline-target">'
    start = html.index(marker) + len(marker)
    return html[start : html.index("<", start)]


def main() -> None:
    out: dict[str, Any] = {}
    user = get_user_model().objects.create_superuser("replica_probe", password="x-Probe-2031!")
    client = Client()
    from tests.conftest import login_as  # force_login + the verified second factor admins need

    login_as(client, user)
    out["first_write"] = set_target(client, 1000)
    wait_until_replayed()

    scalar("replica", "SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + 10
    while scalar("replica", "SELECT pg_get_wal_replay_pause_state()") != "paused":
        if time.monotonic() > deadline:
            sys.exit("replay did not pause")
        time.sleep(0.05)

    # A write through the app while the replica is frozen: it must land on the primary (the
    # standby would refuse it: read-only transaction).
    out["write_while_paused"] = set_target(client, 2000)
    out["primary_value"] = Target.objects.using("default").get(year=YEAR).active_target
    out["replica_value"] = scalar(
        "replica", "SELECT active_target FROM reporting_target WHERE year = %s", [YEAR]
    )

    response, queries = served(client, f"/api/v1/reports/progress/?year={YEAR}")
    out["api"] = {"status": response.status_code, "target": response.json().get("target")}
    out["api_queries"] = queries

    response, queries = served(client, f"/reports/?year={YEAR}")
    html = response.content.decode()
    out["dashboard"] = {"status": response.status_code, "target": headline_target(html)}
    out["dashboard_queries"] = queries

    response, queries = served(client, f"/reports/export/headline.csv?year={YEAR}")
    out["export"] = {"status": response.status_code, "body": response.content.decode()}
    out["export_queries"] = queries

    # Not a dashboard read: the target form reads the primary.
    response, queries = served(client, f"/reports/targets/{YEAR}/")
    out["form_shows_2000"] = 'value="2000"' in response.content.decode()
    out["form_queries"] = queries

    scalar("replica", "SELECT pg_wal_replay_resume()::text")
    wait_until_replayed()
    response, _queries = served(client, f"/api/v1/reports/progress/?year={YEAR}")
    out["api_after_resume"] = response.json().get("target")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
