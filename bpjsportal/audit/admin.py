"""Back office: the audit tables, read-only, and the data-subject export action for participants.

The per-object history is on each tracked model's own "History" page
(templates/admin/object_history.html); these lists are for searching across objects."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from enrollment.models import Participant

from .selectors import describe_actor, describe_where, event_models
from .subject_access import ExportError, can_export, export_participant_data


class AuditEventAdmin(admin.ModelAdmin[Any]):
    list_display = ("pgh_id", "pgh_created_at", "pgh_label", "object_id", "actor", "where")
    list_filter = ("pgh_label",)
    list_per_page = 50
    show_full_result_count = False

    @admin.display(description=_("object"))
    def object_id(self, obj: Any) -> Any:
        return getattr(obj, "pgh_obj_id", None)

    @admin.display(description=_("who"))
    def actor(self, obj: Any) -> str:
        return describe_actor(obj.pgh_context)

    @admin.display(description=_("from where"))
    def where(self, obj: Any) -> str:
        return describe_where(obj.pgh_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


for _model in event_models():
    admin.site.register(_model, AuditEventAdmin)


@admin.action(description=_("Export all data of the participant (JSON, data-subject request)"))
def export_subject_data(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Participant]
) -> HttpResponse | None:
    if not can_export(request.user):
        messages.error(request, _("Only administrators may export a participant's data."))
        return None
    if queryset.count() != 1:
        messages.error(request, _("Select exactly one participant to export."))
        return None
    participant = queryset.get()
    try:
        export = export_participant_data(participant, user=request.user, via="admin")
    except ExportError as exc:
        messages.error(request, exc.message)
        return None
    response = HttpResponse(export.as_json(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="participant-{participant.kpj_number}.json"'
    )
    response["Cache-Control"] = "no-store"
    return response


# Offered on the participant list, which enrollment's admin registers (enrollment is installed
# before bpjsportal.audit, so it is registered by now). Added from here because the export reads
# every app's data: the audit app is above enrollment, and enrollment must not import it.
_participant_admin = admin.site.get_model_admin(Participant)
_participant_admin.actions = [*(_participant_admin.actions or ()), export_subject_data]
