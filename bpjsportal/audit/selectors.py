"""Read paths of the audit trail: the history of one object as who / when / where / what changed.

The triggers store a snapshot of the row per event; "what changed" is the difference to the
previous snapshot of the same row. A row that existed before the audit trail was installed has
no earlier snapshot: its first update shows the values after the change (`baseline=False`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.utils.translation import gettext as _
from pghistory.models import Event

MAX_EVENTS = 500  # per event table and object, newest first


@dataclass
class Change:
    field: str
    old: Any
    new: Any


@dataclass
class AuditEntry:
    id: int
    at: datetime
    label: str
    table: str  # the tracked model's verbose name
    object_id: Any
    context: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    hidden_change: bool = False  # a column not kept in the audit trail changed (NIK, password)
    baseline: bool = True  # False: no earlier snapshot to compare with

    @property
    def actor(self) -> str:
        return describe_actor(self.context)

    @property
    def where(self) -> str:
        return describe_where(self.context)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "label": self.label,
            "table": self.table,
            "object_id": self.object_id,
            "actor": self.actor,
            "where": self.where,
            "context": self.context,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in self.changes],
            "hidden_change": self.hidden_change,
        }


def describe_actor(context: dict[str, Any] | None) -> str:
    ctx = context or {}
    if ctx.get("api_client"):
        return _("API client %(name)s (#%(id)s)") % {
            "name": ctx.get("api_client_name", "?"),
            "id": ctx["api_client"],
        }
    if ctx.get("user"):
        return _("user %(name)s (#%(id)s)") % {
            "name": ctx.get("username") or "?",
            "id": ctx["user"],
        }
    if ctx.get("task"):
        return _("Celery task %(name)s") % {"name": ctx["task"]}
    if ctx.get("command"):
        return _("command %(name)s (OS user %(os_user)s)") % {
            "name": ctx["command"],
            "os_user": ctx.get("os_user", "?"),
        }
    if ctx.get("url"):
        return _("anonymous request")
    return _("database session without application context")


def describe_where(context: dict[str, Any] | None) -> str:
    ctx = context or {}
    parts = [str(ctx[key]) for key in ("ip", "method", "url") if ctx.get(key)]
    if ctx.get("task_id"):
        parts.append(f"task {ctx['task_id']}")
    return " ".join(parts)


def event_models() -> list[type[Event]]:
    return [
        m
        for m in apps.get_app_config("audit").get_models()
        if issubclass(m, Event) and not m._meta.abstract
    ]


def event_models_tracking(model: type[models.Model]) -> list[type[Event]]:
    concrete = model._meta.concrete_model
    return [
        m
        for m in event_models()
        if m.pgh_tracked_model is not None
        and m.pgh_tracked_model._meta.concrete_model is concrete
        and any(f.name == "pgh_obj" for f in m._meta.fields)
    ]


def _data_fields(event_model: type[Event]) -> list[models.Field[Any, Any]]:
    return [f for f in event_model._meta.concrete_fields if not f.name.startswith("pgh_")]


def _entries(event_model: type[Event], events: list[Any]) -> list[AuditEntry]:
    """Entries (oldest first) for events of one table, diffed per tracked row."""
    tracked = event_model.pgh_tracked_model
    table = str(tracked._meta.concrete_model._meta.verbose_name) if tracked else ""
    fields = _data_fields(event_model)
    previous: dict[Any, dict[str, Any]] = {}
    out = []
    for event in events:
        values = {f.name: getattr(event, f.attname) for f in fields}
        key = getattr(event, "pgh_obj_id", None) or tuple(values.values())
        entry = AuditEntry(
            id=event.pgh_id,
            at=event.pgh_created_at,
            label=event.pgh_label,
            table=table,
            object_id=getattr(event, "pgh_obj_id", None),
            context=event.pgh_context or {},
        )
        before = previous.get(key)
        if event.pgh_label == "update":
            if before is None:
                entry.baseline = False
                entry.changes = [Change(n, None, v) for n, v in values.items()]
            else:
                entry.changes = [
                    Change(n, before[n], v) for n, v in values.items() if before[n] != v
                ]
                entry.hidden_change = not entry.changes
        elif event.pgh_label in ("insert", "group.add", "permission.add"):
            entry.changes = [Change(n, None, v) for n, v in values.items()]
        elif event.pgh_label in ("delete", "group.remove", "permission.remove"):
            entry.changes = [Change(n, v, None) for n, v in values.items()]
        if event.pgh_label not in ("delete", "group.remove", "permission.remove"):
            previous[key] = values
        out.append(entry)
    return out


def _latest(qs: models.QuerySet[Any]) -> list[Any]:
    return list(reversed(qs.order_by("-pgh_id")[:MAX_EVENTS]))


def history_for(obj: models.Model) -> list[AuditEntry]:
    """Every audit event of `obj` (and, for a user, group and permission changes), newest first."""
    entries: list[AuditEntry] = []
    for event_model in event_models_tracking(type(obj)):
        entries += _entries(
            event_model, _latest(event_model.objects.filter(**{"pgh_obj_id": obj.pk}))
        )
    if obj._meta.concrete_model is get_user_model():
        for name in ("UserGroupEvent", "UserPermissionEvent"):
            event_model = apps.get_model("audit", name)
            entries += _entries(event_model, _latest(event_model.objects.filter(user_id=obj.pk)))
    return sorted(entries, key=lambda e: (e.at, e.id), reverse=True)


def participant_history(participant: models.Model) -> list[AuditEntry]:
    """A participant's events plus those of its payments and ledger entries, newest first."""
    entries = history_for(participant)
    for name in ("PaymentEvent", "LedgerEntryEvent"):
        event_model = apps.get_model("audit", name)
        qs = event_model.objects.filter(participant_id=participant.pk)
        entries += _entries(event_model, _latest(qs))
    return sorted(entries, key=lambda e: (e.at, e.id), reverse=True)


def history_of(obj: models.Model) -> list[AuditEntry]:
    """The history the admin shows for `obj`: a participant's includes its money."""
    if obj._meta.concrete_model._meta.label == "enrollment.Participant":  # type: ignore[union-attr]
        return participant_history(obj)
    return history_for(obj)


def is_tracked(model: type[models.Model]) -> bool:
    return bool(event_models_tracking(model))
