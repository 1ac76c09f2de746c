"""The parallel build: the groups of provinces in several sessions on one snapshot."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import astuple
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction

from .definitions import DEMO_KEYS, DIMS, FLOWS, LOCK_KEY, marks
from .finish import KEPT_DAY, delete_range, finish
from .group import (
    DIRECT,
    STAGED,
    TimedCursor,
    build_group,
    close_build,
    open_build,
    province_chunks,
)
from .progress import SILENT, BuildProgress
from .sql_rows import AGENT_EVENT_COLUMNS

logger = logging.getLogger(__name__)

# --- the parallel build ----------------------------------------------------------------------
# PostgreSQL runs one statement of one session on one core (and never scans a temp table with
# parallel workers), so the groups of provinces are built by several sessions at once: each
# group in its own transaction on the build's exported snapshot (SET TRANSACTION SNAPSHOT: every
# worker reads the same committed state, as one transaction would), into UNLOGGED staging
# tables; the last transaction replaces the range's rows with the staged ones, so readers still
# see the old range or the new one. The build lock keeps refreshes and other builds out from
# the first step to the last.
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
_STAGE_SOURCES = {STAGED.daily: DIRECT.daily, STAGED.demographic: DIRECT.demographic}
_STAGE_COLUMNS = {
    STAGED.daily: ("day", *DIMS, "registered", "active", "grace", "lapsed", *FLOWS,
                    *(f"ytd_{f}" for f in FLOWS)),
    STAGED.demographic: ("day", *DEMO_KEYS, "registered", "active", "grace", "lapsed"),
}  # fmt: skip


def _drop_stage(cursor: Any) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(astuple(STAGED))}")


def _create_stage() -> None:
    """The staging tables, committed (the workers' sessions must see them); a stage left by a
    build that died is dropped first (the caller holds the build lock)."""
    with connection.cursor() as cursor:
        _drop_stage(cursor)
        for stage, source in _STAGE_SOURCES.items():
            cols = ", ".join(_STAGE_COLUMNS[stage])
            cursor.execute(
                f"CREATE UNLOGGED TABLE {stage} AS SELECT {cols} FROM {source} WITH NO DATA"  # noqa: S608
            )
        cursor.execute(f"CREATE UNLOGGED TABLE {STAGED.agent_events} {AGENT_EVENT_COLUMNS}")


def build_parallel(params: dict[str, Any], workers: int, progress: BuildProgress = SILENT) -> int:
    start, end = params["start"], params["e"]
    started = time.monotonic()
    # The build lock is a transaction lock held by a session of its own from the first step to
    # the last (a session-level lock would not be safe behind pgbouncer's transaction pooling).
    holder = connections.create_connection(connection.alias)
    locked = False
    try:
        holder.set_autocommit(False)
        with holder.cursor() as locker:
            locker.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        locked = True
        _create_stage()
        with transaction.atomic(), connection.cursor() as raw:
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            raw.execute("SELECT pg_export_snapshot()")
            exported = raw.fetchone()
            if exported is None or not _SNAPSHOT_ID.match(exported[0]):
                raise RuntimeError(f"unexpected snapshot id {exported!r}")
            mark, pmark = marks()
            params.update(mark=mark, pmark=pmark, low=0)
            chunks = province_chunks(params["end"], pmark, settings.ROLLUP_BUILD_CHUNK)
            progress.phase(
                f"{start}..{end} ({(end - start).days + 1} days): {len(chunks)} group(s) of"
                f" provinces in {min(workers, len(chunks))} session(s)"
            )
            progress.groups(len(chunks))
            rows, steps = _run_workers(exported[0], params, chunks, workers, progress)
        progress.phase("the range's rows from the staging tables; agent and province rows")
        with transaction.atomic(), connection.cursor() as raw:
            cursor = TimedCursor(raw)
            cursor.steps.extend(steps)
            cursor.execute(
                "SELECT set_config('work_mem', %s, true)", [settings.ROLLUP_BUILD_WORK_MEM]
            )
            delete_range(cursor, start, end)
            for stage, source in _STAGE_SOURCES.items():
                cols = ", ".join(_STAGE_COLUMNS[stage])
                cursor.execute(
                    f"INSERT INTO {source} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
                    f"WHERE {KEPT_DAY}",
                    params,
                )
            finish(cursor, params, STAGED.agent_events, started)
    finally:
        # Cleanup never hides the build's own error nor fails a committed build: the next build
        # drops a stage left behind. Only the build that holds the lock touches the stage.
        try:
            if locked:
                with connection.cursor() as cleanup:
                    _drop_stage(cleanup)
        except Exception:
            logger.exception("rollup build: the staging tables were not dropped")
        finally:
            try:
                holder.rollback()  # the lock goes with the holder's transaction
            except Exception:
                logger.exception("rollup build: the lock session did not roll back")
            finally:
                holder.close()
    logger.info(
        "rollup build %s..%s in %d province group(s), %d sessions: %s",
        start, end, len(chunks), min(workers, len(chunks)), cursor.report(),
    )  # fmt: skip
    return rows


def _run_workers(
    snapshot: str,
    params: dict[str, Any],
    chunks: list[tuple[str, str | None]],
    workers: int,
    progress: BuildProgress,
) -> tuple[int, list[tuple[str, float]]]:
    """Build the groups in `workers` threads, each with its own database session taking the
    next group until none is left; the first error stops the others after their current group
    and is raised. If the calling thread is interrupted (Ctrl-C), the sessions' statements are
    cancelled and the threads joined before it goes on. Returns the staged DailyRollup rows and
    every step's time, once every group is built."""
    alias = connection.alias
    todo: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)
    failed = threading.Event()
    lock = threading.Lock()
    done: list[tuple[int, list[tuple[str, float]]]] = []
    errors: list[BaseException] = []
    backends: dict[str, int] = {}  # thread name -> its session's backend pid, while open

    def work() -> None:
        session = None
        name = threading.current_thread().name
        try:
            session = connections[alias]  # a new connection: Django's are per thread
            while not failed.is_set():
                try:
                    low, high = todo.get_nowait()
                except queue.Empty:
                    return
                with transaction.atomic(using=alias), session.cursor() as raw:
                    raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    raw.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    with lock:
                        backends[name] = session.connection.info.backend_pid
                    cursor = TimedCursor(raw)
                    open_build(cursor, params)
                    group = {**params, "plo": low, "phi": high}
                    rows = build_group(cursor, group, STAGED)
                    close_build(cursor)
                with lock:
                    done.append((rows, cursor.steps))
                    progress.group_built()
        except BaseException as exc:  # re-raised in the calling thread
            failed.set()
            with lock:
                errors.append(exc)
        finally:
            with lock:
                backends.pop(name, None)
            if session is not None:
                session.close()

    threads = [
        threading.Thread(target=work, name=f"rollup-build-{i}", daemon=True)
        for i in range(min(workers, len(chunks)))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        failed.set()
        with lock:
            open_sessions = list(backends.values())
        _cancel(open_sessions)
        for thread in threads:
            thread.join()
        raise
    for extra in errors[1:]:
        logger.error("rollup build: another session failed too: %r", extra)
    if errors:
        raise errors[0]
    if len(done) != len(chunks):
        raise RuntimeError(f"rollup build: {len(done)} of {len(chunks)} groups built")
    return sum(r for r, _s in done), [step for _r, steps in done for step in steps]


def _cancel(backends: list[int]) -> None:
    """Cancel the statements of the build's sessions (from a connection of its own: the
    caller's may be busy or broken)."""
    other = connections.create_connection(connection.alias)
    try:
        with other.cursor() as cursor:
            for pid in backends:
                cursor.execute("SELECT pg_cancel_backend(%s)", [pid])
    except Exception:
        logger.exception("rollup build: the sessions could not be cancelled")
    finally:
        other.close()
