"""`make run`'s web server keeps its database connections bounded: 50 parallel requests (with
kept-alive client connections, as browsers and load tools keep them) leave only a few
connections open on PostgreSQL, not one per request thread."""

from __future__ import annotations

import http.client
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from bpjsportal import launcher
from tests.conftest import _test_database_url, make_staff
from tests.servers import free_port, wait_port

PARALLEL = 50


def _connections_of(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_dev_server_connections_are_back_to_a_few_after_50_parallel_requests(
    branches: dict[str, Any],
) -> None:
    agent = make_staff("devserver_load", "agent", branches["BDG"])
    browser = Client()
    browser.force_login(agent)
    session = browser.cookies["sessionid"].value
    # The server runs on the real clock, the test's may be pinned elsewhere (tests/clock.py):
    # a session that no clock sees expire.
    Session.objects.filter(pk=session).update(expire_date=datetime(2100, 1, 1, tzinfo=UTC))
    # The server's connections carry a name of their own, so the count sees only them.
    name = f"devserver-{uuid.uuid4().hex[:8]}"
    port = free_port()
    server = launcher.start_web_server(
        "127.0.0.1",
        str(port),
        env={**os.environ, "DATABASE_URL": f"{_test_database_url()}?application_name={name}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(PARALLEL)]
    try:
        wait_port(port, up=True, timeout=60)
        statuses: list[int] = []
        start = threading.Barrier(PARALLEL)

        def get_home(client: http.client.HTTPConnection) -> None:
            start.wait()
            client.request("GET", "/", headers={"Cookie": f"sessionid={session}"})
            response = client.getresponse()
            response.read()  # the client keeps the connection open (HTTP/1.1 keep-alive)
            statuses.append(response.status)

        threads = [threading.Thread(target=get_home, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert statuses == [200] * PARALLEL  # the participant list: session, user, rows
        deadline = time.monotonic() + 5
        while (held := _connections_of(name)) > 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert held <= 2, f"{held} database connections held after the requests"
    finally:
        for client in clients:
            client.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
