"""The read-replica router's decisions (bpjsportal/core/routers.py). The end-to-end proof against a
real streaming replica is in test_replica_integration.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connections, transaction

from bpjsportal.core.routers import (
    PRIMARY,
    REPLICA,
    ReplicaRouter,
    replica_reads,
    use_replica,
)
from contributions.models import LedgerEntry
from enrollment.models import ApiClient, Participant, StaffProfile
from reporting.models import DailyRollup, Target

router = ReplicaRouter()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def with_replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A `replica` alias in settings (never connected to by these tests)."""
    monkeypatch.setitem(settings.DATABASES, REPLICA, {**settings.DATABASES[PRIMARY]})
    yield


def test_without_a_replica_everything_reads_and_writes_default() -> None:
    assert REPLICA not in settings.DATABASES
    with replica_reads():
        assert router.db_for_read(DailyRollup) == PRIMARY
        assert router.db_for_read(Participant) == PRIMARY
    assert router.db_for_write(Target) == PRIMARY


def test_dashboard_reads_go_to_the_replica(with_replica: None) -> None:
    with replica_reads():
        for model in (DailyRollup, Target, Participant, LedgerEntry):
            assert router.db_for_read(model) == REPLICA, model


def test_reads_outside_a_dashboard_request_go_to_the_primary(with_replica: None) -> None:
    for model in (DailyRollup, Target, Participant, LedgerEntry):
        assert router.db_for_read(model) == PRIMARY, model


def test_writes_always_go_to_the_primary(with_replica: None) -> None:
    assert router.db_for_write(Target) == PRIMARY
    with replica_reads():
        assert router.db_for_write(Target) == PRIMARY


def test_a_write_sends_the_rest_of_the_request_to_the_primary(with_replica: None) -> None:
    with replica_reads():
        assert router.db_for_read(Target) == REPLICA
        router.db_for_write(Target)
        assert router.db_for_read(Target) == PRIMARY
        assert router.db_for_read(DailyRollup) == PRIMARY
    with replica_reads():  # the next request starts afresh
        assert router.db_for_read(Target) == REPLICA


def test_nested_blocks_share_the_written_state(with_replica: None) -> None:
    with replica_reads():
        with replica_reads():
            router.db_for_write(Target)
        assert router.db_for_read(Target) == PRIMARY


def test_auth_sessions_roles_and_credentials_read_the_primary(with_replica: None) -> None:
    with replica_reads():
        for model in (get_user_model(), Session, StaffProfile, ApiClient):
            assert router.db_for_read(model) == PRIMARY, model


def test_reads_inside_a_transaction_go_to_the_primary(with_replica: None, db: Any) -> None:
    # pytest-django's `db` wraps the test in a transaction: the primary is in an atomic block.
    assert connections[PRIMARY].in_atomic_block
    with replica_reads():
        assert router.db_for_read(DailyRollup) == PRIMARY


@pytest.mark.django_db(transaction=True)
def test_explicit_atomic_block_reads_the_primary(with_replica: None) -> None:
    with replica_reads():
        assert router.db_for_read(DailyRollup) == REPLICA
        with transaction.atomic():
            assert router.db_for_read(DailyRollup) == PRIMARY
        assert router.db_for_read(DailyRollup) == REPLICA


def test_use_replica_decorator_scopes_the_view(with_replica: None) -> None:
    seen: list[str] = []

    @use_replica
    def view(x: int) -> int:
        seen.append(router.db_for_read(DailyRollup))
        return x + 1

    assert view(1) == 2
    assert seen == [REPLICA]
    assert router.db_for_read(DailyRollup) == PRIMARY


def test_only_the_primary_is_migrated(with_replica: None) -> None:
    assert router.allow_migrate(PRIMARY, "enrollment") is True
    assert router.allow_migrate(REPLICA, "enrollment") is False


def test_the_router_is_installed_and_the_replica_mirrors_default_in_tests() -> None:
    assert "bpjsportal.core.routers.ReplicaRouter" in settings.DATABASE_ROUTERS
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "r = settings.DATABASES['replica']; "
        "print(json.dumps([r['TEST']['MIRROR'], r['DISABLE_SERVER_SIDE_CURSORS'], "
        "settings.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS']]))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bpjsportal.settings",
        "REPLICA_DATABASE_URL": "postgres://postgres@127.0.0.1:5499/bpjsportal",
        "DB_DISABLE_SERVER_SIDE_CURSORS": "1",  # behind pgbouncer (transaction pooling)
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == ["default", True, True]
