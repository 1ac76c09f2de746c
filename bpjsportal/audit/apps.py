from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


def allow_test_database_flush(sender: Any, connection: Any, **_kwargs: Any) -> None:
    """Let the test runner flush (TRUNCATE) the append-only audit tables of the *test* database.

    Same rule as the ledger (contributions.apps.allow_test_database_flush): the audit tables'
    TRUNCATE trigger (migration audit 0002) lets a TRUNCATE through only in a session with
    `bpu.audit_truncate = 'allow'`, set here solely on a connection to the database named in
    DATABASES[...]["TEST"]["NAME"]. Production, demo and benchmark databases never match.
    """
    if connection.vendor != "postgresql":
        return
    settings_dict = connection.settings_dict
    test_name = (settings_dict.get("TEST") or {}).get("NAME")
    if test_name and settings_dict.get("NAME") == test_name:
        with connection.cursor() as cursor:
            cursor.execute("SET bpu.audit_truncate = 'allow'")


def define_pgtrigger_ignore(sender: Any, connection: Any, **_kwargs: Any) -> None:
    """Give each connection an empty `pgtrigger.ignore` list.

    django-pgtrigger's triggers first read that setting with `current_setting()` inside a PL/pgSQL
    EXCEPTION block; in a session where it was never defined the read *raises* and the block
    catches it — a subtransaction rolled back on every audited row: about 0.5 ms per row, a
    20,000-row INSERT 9x slower (docs/benchmarks-history.md, "Audit trail"). Defined, it is a
    plain read.

    The same statement asks whether the database is a Citus coordinator, where the audit
    settings must be set so that Citus forwards them to the workers (audit_context.probe_cluster).
    """
    from bpjsportal.core import audit_context

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pgtrigger.ignore', '{}', false), " + audit_context.CLUSTER_PROBE
        )
        row = cursor.fetchone()
    audit_context.probe_cluster(connection, bool(row and row[1]))


class AuditConfig(AppConfig):
    name = "bpjsportal.audit"
    label = "audit"
    verbose_name = _("Audit trail")

    def ready(self) -> None:
        from bpjsportal.core import audit_context  # AppConfig.ready() wiring
        from enrollment.demo import register_bulk_session

        from .bulk import skip_audit_triggers

        connection_created.connect(allow_test_database_flush, weak=False)
        connection_created.connect(define_pgtrigger_ignore, weak=False)
        audit_context.connect_celery_signals()
        # the demo's synthetic rows, like the generators', are not audited (DEBUG only)
        register_bulk_session(skip_audit_triggers)
