"""A throw-away Citus cluster on this machine: one coordinator and N workers, each a PostgreSQL
started with `initdb` in a directory of its own on a free local port, `shared_preload_libraries =
'citus'`. The cluster tests (tests/citus/) and the cluster benchmarks (bench/) start one; nothing
in the portal itself needs it. As root the servers run as the `postgres` OS user (initdb refuses
root). `ensure_citus()` installs the extension when it is missing (see its doc)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_CONFIG = Path(os.environ.get("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config"))
# where this workplace keeps the Citus source and its build script (next to the project)
ENGINES = Path(__file__).resolve().parents[3] / "shared" / "engines"
CITUS_PACKAGE = "postgresql-15-citus-13.2 (packages.citusdata.com), or build citus 13.2 from source"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "citus",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "max_connections": "200",
    "max_prepared_transactions": "200",  # Citus commits multi-node writes in two phases
    "citus.shard_count": "8",
    "log_min_messages": "warning",
    # Django sets its own session's zone (UTC) on the coordinator; the sessions Citus opens on
    # the workers take the server's, which initdb copied from this process (Django's TIME_ZONE)
    "timezone": "UTC",
}


class CitusMissing(RuntimeError):
    pass


def citus_installed() -> bool:
    try:
        libdir = subprocess.run(
            [str(PG_CONFIG), "--pkglibdir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return (Path(libdir) / "citus.so").exists()


def ensure_citus() -> None:
    """Citus in this machine's PostgreSQL: already there, or built from ../shared/engines (the
    workplace's copy of the Citus source, about 2 minutes), or a clear error naming the package."""
    if citus_installed():
        return
    script = ENGINES / "build-citus.sh"
    if not script.exists():
        raise CitusMissing(
            f"Citus is not installed in {PG_CONFIG.parent.parent} and {script} is absent: "
            f"install {CITUS_PACKAGE}, then run the tests again"
        )
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not citus_installed():
        raise CitusMissing(f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], timeout: float = 120) -> None:
    result = subprocess.run(
        as_pg_user(cmd), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {result.stdout}\n{result.stderr}")


@dataclass
class LocalCluster:
    """`with LocalCluster(workers=2) as cluster:` starts the servers; `cluster.create_database(
    name)` makes a database with Citus on every node and the workers registered; the context's
    end stops the servers and removes their directories."""

    workers: int = 2
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="citus-")))
    ports: list[int] = field(default_factory=list)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def coordinator_port(self) -> int:
        return self.ports[0]

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.coordinator_port}/{database}"

    def _dirs(self) -> list[Path]:
        return [self.base / f"node{i}" for i in range(self.workers + 1)]

    def start(self) -> None:
        ensure_citus()
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
        options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
        for datadir in self._dirs():
            _run([str(PG_BIN / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres"])
            port = free_port()
            self.ports.append(port)
            _run(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-o",
                    f"-p {port} -k {self.base} {options}",
                    "-l",
                    f"{datadir}.log",
                    "-w",
                    "start",
                ]
            )

    def stop(self) -> None:
        for datadir in self._dirs():
            if (datadir / "postmaster.pid").exists():
                subprocess.run(
                    as_pg_user(
                        [str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]
                    ),
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A database of this name on every node, Citus created in each, the workers added to
        the coordinator's metadata. Returns the coordinator's URL for it."""
        for port in self.ports:
            with psycopg.connect(self.url("postgres", port), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(self.url(name, port), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", [self.ports[0]])
            for port in self.ports[1:]:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", [port])
        return self.url(name)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                try:
                    psycopg.connect(self.url("postgres", port)).close()
                    break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
