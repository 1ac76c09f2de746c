"""Who and where, attached to every audit event (pghistory context, stored as JSON per event).

- web requests: AuditContextMiddleware (bpjsportal/audit/middleware.py) — user id and username,
  client IP, method and path;
- API requests: the API client resolved by the token authentication (note_api_client);
- Celery tasks: the task name and id (connect_celery_signals, from AuditConfig.ready);
- management commands: the command and the operating-system user (manage.py, command_context).

Inside a context, pghistory prefixes each writing SQL statement sent through Django's connection
with `set_config('pghistory.context_…', …, true)`, so the triggers see it. A statement sent
outside Django (psql, a COPY through the raw driver cursor) records its event with no context
unless the transaction set it first: `bind_to_transaction` does that for raw paths.

On a Citus cluster the triggers of the sharded tables fire on the workers, which never see the
coordinator's `set_config`. There the prefix is `SELECT audit_set_local(...)` instead (migration
audit 0015): a real `SET LOCAL`, which Citus forwards to the transaction's worker connections,
issued only when the context differs from the one the transaction already carries. Connections
get `propagates_audit_settings` when they open (`probe_cluster`); on one server nothing changes.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pghistory
import pghistory.config
import pghistory.runtime
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection
from django.http import HttpRequest

# Long-running commands whose whole life must not become one context.
UNTRACKED_COMMANDS = {"runserver", "test", "celery"}


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or — behind a trusted proxy (settings.AUDIT_CLIENT_IP_HEADER, e.g.
    HTTP_X_FORWARDED_FOR) — the address that proxy appended (the last one in the header)."""
    header = getattr(settings, "AUDIT_CLIENT_IP_HEADER", "")
    if header:
        forwarded = str(request.META.get(header, ""))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


def request_context(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    try:
        authenticated = bool(user is not None and user.is_authenticated and hasattr(user, "_meta"))
    except DatabaseError:  # the database is down: the request ends in a 503, nothing to record
        authenticated = False
    return {
        "user": user.pk if authenticated and user is not None else None,
        "username": user.get_username() if authenticated and user is not None else None,
        "ip": client_ip(request),
        "method": request.method,
        "url": request.path[:300],
    }


def note_api_client(client: Any) -> None:
    """Add the API client to the current context (no-op outside one)."""
    pghistory.context(
        api_client=client.pk, api_client_name=client.name, api_client_scope=client.scope
    )


def note(**metadata: Any) -> None:
    """Add facts to the current context (no-op outside one)."""
    pghistory.context(**metadata)


def current() -> dict[str, Any] | None:
    """The metadata of the context in force, or None."""
    value = getattr(pghistory.runtime._tracker, "value", None)
    return dict(value.metadata) if value is not None else None


def bind_to_transaction(cursor: Any) -> None:
    """Set the current context for the rest of the open transaction on `cursor` (a Django or raw
    psycopg cursor of the default database): for statements Django's execute wrapper never sees,
    such as COPY."""
    _bind(cursor, getattr(cursor, "db", None) or connection)


def _bind(cursor: Any, db: Any) -> None:
    value = getattr(pghistory.runtime._tracker, "value", None)
    if value is None:
        return
    context_id, metadata = str(value.id), json.dumps(value.metadata, cls=DjangoJSONEncoder)
    if getattr(db, PROPAGATES, False):
        cursor.execute(_CLUSTER_PREFIX.rstrip("; "), [context_id, True, metadata, True])
        db.audit_settings_stale = False
        return
    cursor.execute(
        "SELECT set_config('pghistory.context_id', %s, true),"
        " set_config('pghistory.context_metadata', %s, true)",
        [context_id, metadata],
    )


def set_local(cursor: Any, setting: str, value: str | None) -> None:
    """Set one of the audit triggers' settings (`pghistory.context_id`,
    `pghistory.context_metadata`, `pgtrigger.ignore`) for the rest of the open transaction on
    `cursor` (a Django or raw psycopg cursor of the default database), on every node of a
    cluster. None sets it empty, like set_config."""
    db = getattr(cursor, "db", None) or connection
    if getattr(db, PROPAGATES, False):
        cursor.execute("SELECT audit_set_local(%s, %s, true)", [setting, value])
    else:
        cursor.execute("SELECT set_config(%s, %s, true)", [setting, value])


# --- on a Citus cluster ------------------------------------------------------------------------
# The connection attribute saying the audit settings go out as `audit_set_local` (SET LOCAL,
# forwarded to the workers) instead of set_config: a Citus coordinator with that function.
PROPAGATES = "propagates_audit_settings"
# Run once per new connection, with the statement that defines `pgtrigger.ignore`
# (bpjsportal.audit.apps): true on a Citus coordinator migrated to audit 0015.
CLUSTER_PROBE = (
    "to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL"
    " AND to_regprocedure('audit_set_local(text, text, boolean)') IS NOT NULL"
)
_CLUSTER_PREFIX = (
    "SELECT audit_set_local('pghistory.context_id', %s, %s),"
    " audit_set_local('pghistory.context_metadata', %s, %s); "
)
_CLUSTER_PREFIX_NAMED = (
    "SELECT audit_set_local('pghistory.context_id', %(pghistory__context_id)s,"
    " %(pghistory__force)s), audit_set_local('pghistory.context_metadata',"
    " %(pghistory__context_metadata)s, %(pghistory__force)s); "
)


def probe_cluster(db: Any, propagates: bool) -> None:
    """Record on the connection what CLUSTER_PROBE found."""
    setattr(db, PROPAGATES, propagates)
    db.audit_settings_stale = False


def _inject_on_cluster(
    execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """pghistory's injection (runtime._inject_history_context) with `audit_set_local` calls in
    place of set_config. Citus forgets the SETs made inside a savepoint once it is released:
    the first write after a RELEASE sets the context again (force)."""
    is_bytes = isinstance(sql, bytes)
    text = sql.decode() if is_bytes else sql
    if pghistory.runtime._can_inject_variable(context["cursor"], text):
        db = context["connection"]
        value = pghistory.runtime._tracker.value
        context_id = str(value.id)
        metadata = json.dumps(value.metadata, cls=pghistory.config.json_encoder())
        force = bool(getattr(db, "audit_settings_stale", False))
        if isinstance(params, dict):
            params.update(
                pghistory__context_id=context_id,
                pghistory__context_metadata=metadata,
                pghistory__force=force,
            )
            text = _CLUSTER_PREFIX_NAMED + text
        else:
            params = (context_id, force, metadata, force, *(params or ()))
            text = _CLUSTER_PREFIX + text
        db.audit_settings_stale = False
    return pghistory.runtime._execute_wrapper(
        execute(text.encode() if is_bytes else text, params, many, context)
    )


def command_context(argv: Sequence[str]) -> contextlib.AbstractContextManager[Any]:
    """The context of a management command run from manage.py."""
    if len(argv) < 2 or argv[1] in UNTRACKED_COMMANDS or argv[1].startswith("-"):
        return contextlib.nullcontext()
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        os_user = str(os.getuid())
    return pghistory.context(command=argv[1], os_user=os_user)


# --- executemany ---------------------------------------------------------------------------
# pghistory 3.9 prefixes `SELECT set_config(...); ` to every statement, executemany included,
# where it prepends its two values to the *list of parameter rows* and the driver fails
# ("query parameters should be a sequence or a mapping, got str"); e.g. the sponsor-batch
# posting (contributions.services._write_batch) inside a request. For executemany the context
# is set once for the transaction instead; outside a transaction each row goes alone.
_pghistory_inject = pghistory.runtime._inject_history_context


# Statements that never fire a trigger get no context either (pghistory already skips SELECT):
# Django's savepoints, three or four pairs in a payment's transaction.
_NO_TRIGGER_PREFIXES = ("savepoint", "release savepoint", "rollback to savepoint")


def _inject_history_context(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
    text = sql.decode() if isinstance(sql, bytes) else str(sql)
    db = context["connection"]
    inject = _inject_on_cluster if getattr(db, PROPAGATES, False) else _pghistory_inject
    head = text.lstrip()[:21].lower()
    if head.startswith(_NO_TRIGGER_PREFIXES):
        if inject is _inject_on_cluster and head.startswith("release"):
            db.audit_settings_stale = True
        return execute(sql, params, many, context)
    if not many:
        return inject(execute, sql, params, many, context)
    if db.in_atomic_block or not db.get_autocommit():
        _bind(context["cursor"].cursor, db)
        return execute(sql, params, many, context)
    result = None
    for row in params:
        result = inject(execute, sql, row, False, context)
    return result


pghistory.runtime._inject_history_context = _inject_history_context


# --- Celery ------------------------------------------------------------------------------
_task_contexts: dict[str, pghistory.context] = {}


def _task_started(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    ctx = pghistory.context(task=task.name, task_id=task_id)
    ctx.__enter__()
    _task_contexts[task_id] = ctx


def _task_finished(task_id: str | None = None, **_kwargs: Any) -> None:
    ctx = _task_contexts.pop(task_id or "", None)
    if ctx is not None:
        ctx.__exit__(None, None, None)


def connect_celery_signals() -> None:
    task_prerun.connect(_task_started, weak=False, dispatch_uid="audit_task_started")
    task_postrun.connect(_task_finished, weak=False, dispatch_uid="audit_task_finished")


@contextlib.contextmanager
def labelled(**metadata: Any) -> Iterator[None]:
    """Enter a context (or add to the one in force) for a block of code."""
    with pghistory.context(**metadata):
        yield


__all__ = [
    "bind_to_transaction",
    "client_ip",
    "command_context",
    "connect_celery_signals",
    "current",
    "labelled",
    "note",
    "note_api_client",
    "probe_cluster",
    "request_context",
    "set_local",
]
