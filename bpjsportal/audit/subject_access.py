"""Data-subject requests (UU PDP No. 27/2022): everything held about one participant, as JSON.

`export_participant_data` gathers the participant's record, coverage, payments, ledger,
reminders (with their delivery states), reminder preference and consent, and the audit history;
it records the export itself as a `data_export` audit event on the participant (who, when, from
where, why). Only administrators may export (`can_export`). Used by the management command
`export_participant_data` and the admin action on participants. Rules: docs/security.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pghistory
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bpjsportal.core import audit_context as context
from contributions.models import Coverage, LedgerEntry, Payment, Reminder, ReminderPreference
from enrollment.models import Participant, nik_q

from .models import DATA_EXPORT, AuditedParticipant
from .selectors import participant_history

FORMAT = "bpu-participant-export/1"
# Columns never exported as such: internal sync positions and stored forms of the NIK (the NIK
# is exported once, in clear, from `participant.nik`).
INTERNAL = {"sync_txid", "nik", "nik_digest", "nik_encrypted", "client_token"}


class ExportError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SubjectExport:
    participant: Participant
    data: dict[str, Any]

    def as_json(self) -> str:
        return json.dumps(self.data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


def can_export(user: Any) -> bool:
    """Administrators only: a superuser or a staff profile with the admin role."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    staff = getattr(user, "staff", None)
    return staff is not None and staff.role == "admin"


def find_participant(*, kpj: str | None = None, nik: str | None = None) -> Participant:
    """The participant with this KPJ number or NIK, or ExportError."""
    if bool(kpj) == bool(nik):
        raise ExportError("one_key", _("Give exactly one of a KPJ number or a NIK."))
    try:
        if kpj:
            return Participant.objects.get(kpj_number=kpj.strip())
        return _by_nik((nik or "").strip())
    except Participant.DoesNotExist:
        raise ExportError("not_found", _("No participant has this KPJ number or NIK.")) from None


def _by_nik(nik: str) -> Participant:
    # The NIK is stored as a keyed digest (enrollment.pii): a probe of the unique digest index.
    return Participant.objects.get(nik_q(nik))


def _row(obj: models.Model, exclude: set[str] = INTERNAL) -> dict[str, Any]:
    return {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.name not in exclude and f.attname not in exclude
    }


def export_participant_data(
    participant: Participant, *, user: Any, reason: str = "", via: str = "admin"
) -> SubjectExport:
    """Everything held about `participant`; the export is recorded in the audit trail."""
    if not can_export(user):
        raise ExportError("forbidden", _("Only administrators may export a participant's data."))
    with (
        transaction.atomic(),
        pghistory.context(data_access="subject_export", via=via, reason=reason[:255]),
    ):
        context.note(user=user.pk, username=user.get_username())
        pghistory.create_event(AuditedParticipant.objects.get(pk=participant.pk), label=DATA_EXPORT)
        data = _collect(participant)
    data["exported_at"] = timezone.now()
    data["exported_by"] = user.get_username()
    data["reason"] = reason
    return SubjectExport(participant=participant, data=data)


def _collect(participant: Participant) -> dict[str, Any]:
    person = _row(participant)
    person["nik"] = participant.nik  # attribute access: works once the NIK is encrypted at rest
    person["village_name"] = participant.village.name
    person["regency_name"] = participant.regency.name
    person["province_name"] = participant.province.name
    person["occupation_name"] = participant.occupation.name_id
    coverage = Coverage.objects.filter(participant=participant).first()
    preference = ReminderPreference.objects.filter(participant=participant).first()
    return {
        "format": FORMAT,
        "participant": person,
        "consent": {
            "consent_data": participant.consent_data,
            "consent_reminders": participant.consent_reminders,
            "reminders_opted_out_at": preference.opted_out_at if preference else None,
        },
        "coverage": _row(coverage) if coverage else None,
        "payments": [_row(p) for p in Payment.objects.filter(participant=participant)],
        "ledger": [_row(e) for e in LedgerEntry.objects.filter(participant=participant)],
        "reminder_preference": _row(preference) if preference else None,
        "reminders": [_row(r) for r in Reminder.objects.filter(participant=participant)],
        "audit_history": [e.as_dict() for e in participant_history(participant)],
    }
