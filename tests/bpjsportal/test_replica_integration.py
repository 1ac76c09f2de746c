"""The read-replica router against a REAL streaming replica: a throw-away primary (initdb, on a
free local port) and a replica cloned from it with `pg_basebackup -R`, both in a temp dir and
stopped at the end. WAL replay on the replica is paused, so a figure changed on the primary
differs between the two: the dashboard, export and progress API show the replica's, the write and
the target form use the primary's (tests/bpjsportal/replica_probe.py does the requests).

Needs the PostgreSQL server binaries (PG_BIN, default /usr/lib/postgresql/15/bin); skipped only
when they are absent. As root, the servers run as the `postgres` OS user (initdb refuses root).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpjsportal.core.citus_cluster import as_pg_user as _as_pg_user
from bpjsportal.core.citus_cluster import free_port as _free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
NEEDED = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c shared_buffers=32MB -c max_connections=20"
)


def _pg(tool: str, *args: str, timeout: float = 60) -> None:
    result = subprocess.run(
        _as_pg_user([str(PG_BIN / tool), *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")


def _start(datadir: Path, port: int, sockets: Path) -> None:
    options = f"-p {port} -k {sockets} {SERVER_OPTIONS}"
    _pg("pg_ctl", "-D", str(datadir), "-o", options, "-l", f"{datadir}.log", "-w", "start")


def _stop(datadir: Path) -> None:
    if (datadir / "postmaster.pid").exists():
        subprocess.run(
            _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=30,
            check=False,
        )


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[str, str]]:
    missing = [tool for tool in NEEDED if not (PG_BIN / tool).exists()]
    if missing:
        pytest.skip(f"PostgreSQL server binaries absent in {PG_BIN}: {', '.join(missing)}")
    base = Path(tempfile.mkdtemp(prefix="replica-test-"))
    primary, replica = base / "primary", base / "replica"
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(base, pg.pw_uid, pg.pw_gid)
    base.chmod(0o700)
    try:
        p_port = _free_port()
        r_port = _free_port()
        while r_port == p_port:
            r_port = _free_port()
        # initdb's default pg_hba (trust) allows replication connections from 127.0.0.1, and
        # wal_level=replica with 10 WAL senders is the default: enough for pg_basebackup -R.
        _pg("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        _start(primary, p_port, base)
        primary_url = f"postgres://postgres@127.0.0.1:{p_port}/bpjsportal"
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres",
             "bpjsportal"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        env = {**os.environ, "DATABASE_URL": primary_url}
        env.pop("REPLICA_DATABASE_URL", None)
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming replica.
        _pg("pg_basebackup", "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres",
            "-D", str(replica), "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        _start(replica, r_port, base)  # -w: returns once it accepts read-only connections
        yield primary_url, f"postgres://postgres@127.0.0.1:{r_port}/bpjsportal"
    finally:
        _stop(replica)
        _stop(primary)
        shutil.rmtree(base, ignore_errors=True)


def _touches(queries: list[str], table: str) -> bool:
    return any(f'"{table}"' in sql for sql in queries)


def test_dashboard_reads_the_replica_and_writes_go_to_the_primary(
    primary_and_replica: tuple[str, str],
) -> None:
    primary_url, replica_url = primary_and_replica
    env = {
        **os.environ,
        "DATABASE_URL": primary_url,
        "REPLICA_DATABASE_URL": replica_url,
        "DJANGO_SETTINGS_MODULE": "bpjsportal.settings",
        "DEBUG": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.bpjsportal.replica_probe"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    # Both target-form writes succeeded: on a hot standby they would have failed (read-only).
    assert out["first_write"] == 302
    assert out["write_while_paused"] == 302
    # Replay is paused: the two servers now disagree.
    assert out["primary_value"] == 2000
    assert out["replica_value"] == 1000

    # Dashboard reads: the replica's figure, and their reporting queries ran on the replica.
    assert out["api"] == {"status": 200, "target": 1000}
    assert out["dashboard"] == {"status": 200, "target": "1.000"}
    assert out["export"]["status"] == 200
    assert ",1000" in out["export"]["body"] and ",2000" not in out["export"]["body"]
    for key in ("api_queries", "dashboard_queries", "export_queries"):
        queries = out[key]
        # The figures, or (a figures-cache hit, reporting/cache.py) the state they are cached
        # by, come from the replica, never from the primary.
        assert _touches(queries["replica"], "reporting_target") or _touches(
            queries["replica"], "reporting_figuresversion"
        ), key
        assert not _touches(queries["primary"], "reporting_target"), key
        assert not _touches(queries["primary"], "reporting_figuresversion"), key
        assert not _touches(queries["primary"], "reporting_dailyrollup"), key
        # The session and user were read from the primary (the replica never saw this
        # session: it was created after replay was paused).
        assert not _touches(queries["replica"], "django_session"), key
        assert not _touches(queries["replica"], "auth_user"), key
    assert _touches(out["dashboard_queries"]["primary"], "django_session")

    # Any other page reads the primary: the target form shows the new value at once.
    assert out["form_shows_2000"]
    assert not out["form_queries"]["replica"]

    # Once replay resumes, the dashboard catches up.
    assert out["api_after_resume"] == 2000
