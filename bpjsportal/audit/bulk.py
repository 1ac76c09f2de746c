"""Loading synthetic data without audit events (benchmark and scale-test generators only).

The audit triggers fire for COPY and INSERT ... SELECT too, which roughly doubles the cost of
loading millions of synthetic rows. A generator may switch *only the audit triggers* off for its
own transaction with `skip_audit_triggers(cursor)` — django-pgtrigger's `pgtrigger.ignore`
setting, transaction-local (on a Citus cluster forwarded to the workers, where the triggers of the
sharded tables fire). Unlike `session_replication_role = replica` this keeps every other trigger
(the sync_txid stamps, the ledger's append-only and reversal checks) and foreign keys working.
Never call it from the application: production changes are always audited.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from bpjsportal.core.audit_context import set_local

from .selectors import event_models


def audit_trigger_ids(*tracked: type[models.Model]) -> list[str]:
    """The database names of the audit triggers on the given tables (all tables if none)."""
    concrete = {m._meta.concrete_model for m in tracked}
    ids: list[str] = []
    for event_model in event_models():
        proxy = event_model.pgh_tracked_model
        if proxy is None:
            continue
        if concrete and proxy._meta.concrete_model not in concrete:
            continue
        for trigger in getattr(proxy._meta, "triggers", []):
            ids.append(trigger.get_pgid(proxy))
    return sorted(set(ids))


def skip_audit_triggers(cursor: Any, *tracked: type[models.Model]) -> None:
    """Until the end of the open transaction on `cursor`, the audit triggers of the given
    tables (all if none) do nothing, on every node of a Citus cluster too. `cursor` may be a
    Django or a raw psycopg cursor (of the default database)."""
    set_local(cursor, "pgtrigger.ignore", "{" + ",".join(audit_trigger_ids(*tracked)) + "}")
