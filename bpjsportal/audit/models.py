"""Audit event tables, written by database triggers (django-pghistory on django-pgtrigger).

Each tracked table gets AFTER INSERT / UPDATE / DELETE row triggers that copy the row into its
event table here, with the label (insert, update, delete, ...), the time and the context of the
session that made the change: who (portal user, API client, Celery task or management command),
from where (IP, URL) — see bpjsportal/core/audit_context.py. Because they are triggers, raw SQL,
QuerySet.update(), bulk_create() and COPY are recorded as well as Model.save().

The tracked models are *proxies* defined in this app, so every trigger and event table lives in
this app's migrations: enrollment, contributions, reporting and django.contrib.auth migrations are
untouched. The event tables are append-only (migration 0002, like the ledger).

Not copied into the audit tables: the NIK columns (`nik`, and `nik_digest` / `nik_encrypted`
once the NIK is stored encrypted), password hashes, API token hashes. A change of one of them
still records an `update` event (the trigger compares whole rows), shown as "a field not kept in
the audit trail changed". Columns that change on every write without meaning a change
(`updated_at`, `sync_txid`, `last_login`, `last_used_at`) neither fire an update nor are copied.
"""

from __future__ import annotations

from typing import Any

import pghistory
import pgtrigger
from django.contrib.auth.models import User
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticToken

from contributions.commissions.models import CommissionRule, CommissionStatement, PerisaiMembership
from contributions.models import (
    AutodebitMandate,
    Bill,
    Holiday,
    IncomeLevel,
    LedgerEntry,
    Payment,
    RateDiscount,
    RateSchedule,
    SponsorBatch,
    SponsorConsent,
    SuspenseItem,
    SuspenseResolution,
)
from enrollment.models import ApiClient, Participant, StaffProfile
from reporting.models import Target, TargetBreakdown, TargetMilestone

# Labels of manual events (not written by a trigger).
DATA_EXPORT = "data_export"  # a data-subject export of everything held about a participant

# Never copied into an audit table (personal identifiers and secrets).
SECRET_FIELDS = (
    "nik",
    "nik_digest",
    "nik_encrypted",
    "password",
    "token_hash",
    "field_queue_secret",
    "token",  # a backup code's digest (django-otp's StaticToken)
)
# Change on every write without being a change worth recording.
NOISE_FIELDS = ("updated_at", "sync_txid", "last_login", "last_used_at")


def _changed(model: type[models.Model]) -> pgtrigger.Condition:
    """Fire on any change of the row except the noise columns. Compared as JSON so the condition
    names no column: it survives columns being added or dropped (e.g. the NIK encryption)."""
    noise = [str(f.column) for f in model._meta.concrete_fields if f.name in NOISE_FIELDS]
    if not noise:
        return pgtrigger.Condition("(OLD.* IS DISTINCT FROM NEW.*)")
    keys = "'{" + ",".join(noise) + "}'::text[]"
    return pgtrigger.Condition(
        f"((to_jsonb(OLD.*) - {keys}) IS DISTINCT FROM (to_jsonb(NEW.*) - {keys}))"
    )


def _event_name(template: Any, model: type[models.Model]) -> Any:
    return format_lazy(template, model=model._meta.verbose_name)


def _audited(model: type[models.Model]) -> Any:
    """A tracking proxy's name (only seen in the permissions list): the tracked table's name."""
    return format_lazy(_("{model} (audited)"), model=model._meta.verbose_name)


def _audited_plural(model: type[models.Model]) -> Any:
    return format_lazy(_("{model} (audited)"), model=model._meta.verbose_name_plural)


def _track(
    proxy: type[models.Model],
    model_name: str,
    *,
    trackers: tuple[pghistory.Tracker, ...] | None = None,
    with_obj: bool = True,
    indexes: list[models.Index] | None = None,
    verbose_name: Any = None,
    verbose_name_plural: Any = None,
) -> None:
    concrete = proxy._meta.concrete_model
    if concrete is None:
        raise TypeError(f"{proxy} has no concrete model to track")
    if trackers is None:
        trackers = (
            pghistory.InsertEvent("insert"),
            pghistory.UpdateEvent("update", condition=_changed(concrete)),
            pghistory.DeleteEvent("delete"),
        )
    kwargs: dict[str, Any] = {}
    if not with_obj:
        kwargs["obj_field"] = None
    else:
        kwargs["obj_field"] = pghistory.ObjForeignKey(db_index=True, related_name="+")
    pghistory.track(
        *trackers,
        exclude=[*SECRET_FIELDS, *NOISE_FIELDS],
        context_field=pghistory.ContextJSONField(),
        context_id_field=pghistory.ContextUUIDField(),
        append_only=False,  # our own guard (migration 0002) also refuses TRUNCATE
        model_name=model_name,
        app_label="audit",
        meta={
            # Lazy: in the language of the request, not of the import (the event tables' names
            # in the back office, translated like their tracked tables' names).
            "verbose_name": verbose_name or _event_name(_("{model} event"), concrete),
            "verbose_name_plural": verbose_name_plural
            or _event_name(_("{model} events"), concrete),
            "ordering": ["-pgh_id"],
            "indexes": indexes or [],
        },
        **kwargs,
    )(proxy)


# --- the tracked tables, as proxies ------------------------------------------------------
class AuditedParticipant(Participant):
    class Meta:
        proxy = True
        verbose_name = _audited(Participant)
        verbose_name_plural = _audited_plural(Participant)


class AuditedPayment(Payment):
    class Meta:
        proxy = True
        verbose_name = _audited(Payment)
        verbose_name_plural = _audited_plural(Payment)


class AuditedLedgerEntry(LedgerEntry):
    class Meta:
        proxy = True
        verbose_name = _audited(LedgerEntry)
        verbose_name_plural = _audited_plural(LedgerEntry)


class AuditedSponsorConsent(SponsorConsent):
    class Meta:
        proxy = True
        verbose_name = _audited(SponsorConsent)
        verbose_name_plural = _audited_plural(SponsorConsent)


class AuditedSponsorBatch(SponsorBatch):
    class Meta:
        proxy = True
        verbose_name = _audited(SponsorBatch)
        verbose_name_plural = _audited_plural(SponsorBatch)


class AuditedBill(Bill):
    class Meta:
        proxy = True
        verbose_name = _audited(Bill)
        verbose_name_plural = _audited_plural(Bill)


class AuditedSuspenseItem(SuspenseItem):
    class Meta:
        proxy = True
        verbose_name = _audited(SuspenseItem)
        verbose_name_plural = _audited_plural(SuspenseItem)


class AuditedSuspenseResolution(SuspenseResolution):
    class Meta:
        proxy = True
        verbose_name = _audited(SuspenseResolution)
        verbose_name_plural = _audited_plural(SuspenseResolution)


class AuditedAutodebitMandate(AutodebitMandate):
    class Meta:
        proxy = True
        verbose_name = _audited(AutodebitMandate)
        verbose_name_plural = _audited_plural(AutodebitMandate)


class AuditedTarget(Target):
    class Meta:
        proxy = True
        verbose_name = _audited(Target)
        verbose_name_plural = _audited_plural(Target)


class AuditedTargetMilestone(TargetMilestone):
    class Meta:
        proxy = True
        verbose_name = _audited(TargetMilestone)
        verbose_name_plural = _audited_plural(TargetMilestone)


class AuditedTargetBreakdown(TargetBreakdown):
    class Meta:
        proxy = True
        verbose_name = _audited(TargetBreakdown)
        verbose_name_plural = _audited_plural(TargetBreakdown)


class AuditedRateSchedule(RateSchedule):
    class Meta:
        proxy = True
        verbose_name = _audited(RateSchedule)
        verbose_name_plural = _audited_plural(RateSchedule)


class AuditedIncomeLevel(IncomeLevel):
    class Meta:
        proxy = True
        verbose_name = _audited(IncomeLevel)
        verbose_name_plural = _audited_plural(IncomeLevel)


class AuditedRateDiscount(RateDiscount):
    class Meta:
        proxy = True
        verbose_name = _audited(RateDiscount)
        verbose_name_plural = _audited_plural(RateDiscount)


class AuditedHoliday(Holiday):
    class Meta:
        proxy = True
        verbose_name = _audited(Holiday)
        verbose_name_plural = _audited_plural(Holiday)


class AuditedCommissionRule(CommissionRule):
    class Meta:
        proxy = True
        verbose_name = _audited(CommissionRule)
        verbose_name_plural = _audited_plural(CommissionRule)


class AuditedCommissionStatement(CommissionStatement):
    class Meta:
        proxy = True
        verbose_name = _audited(CommissionStatement)
        verbose_name_plural = _audited_plural(CommissionStatement)


class AuditedPerisaiMembership(PerisaiMembership):
    class Meta:
        proxy = True
        verbose_name = _audited(PerisaiMembership)
        verbose_name_plural = _audited_plural(PerisaiMembership)


class AuditedApiClient(ApiClient):
    class Meta:
        proxy = True
        verbose_name = _audited(ApiClient)
        verbose_name_plural = _audited_plural(ApiClient)


class AuditedStaffProfile(StaffProfile):
    class Meta:
        proxy = True
        verbose_name = _audited(StaffProfile)
        verbose_name_plural = _audited_plural(StaffProfile)


class AuditedUser(User):
    class Meta:
        proxy = True
        verbose_name = _audited(User)
        verbose_name_plural = _audited_plural(User)


class AuditedUserGroups(User.groups.through):  # type: ignore[name-defined]
    class Meta:
        proxy = True
        verbose_name = _("user group membership (audited)")
        verbose_name_plural = _("user group memberships (audited)")


class AuditedUserPermissions(User.user_permissions.through):  # type: ignore[name-defined]
    class Meta:
        proxy = True
        verbose_name = _("user permission (audited)")
        verbose_name_plural = _("user permissions (audited)")


class AuditedStaticToken(StaticToken):
    class Meta:
        proxy = True
        verbose_name = _("backup code (audited)")
        verbose_name_plural = _("backup codes (audited)")


_track(
    AuditedParticipant,
    "ParticipantEvent",
    trackers=(
        pghistory.InsertEvent("insert"),
        pghistory.UpdateEvent("update", condition=_changed(Participant)),
        pghistory.DeleteEvent("delete"),
        pghistory.ManualEvent(DATA_EXPORT),
    ),
)
_track(
    AuditedPayment,
    "PaymentEvent",
    indexes=[models.Index(fields=["participant"], name="audit_payment_participant")],
)
# The ledger refuses UPDATE and DELETE itself (contributions migration 0003): inserts only.
_track(
    AuditedLedgerEntry,
    "LedgerEntryEvent",
    trackers=(pghistory.InsertEvent("insert"),),
    indexes=[models.Index(fields=["participant"], name="audit_ledger_participant")],
)
_track(
    AuditedSponsorConsent,
    "SponsorConsentEvent",
    indexes=[models.Index(fields=["participant"], name="audit_consent_participant")],
)
_track(AuditedSponsorBatch, "SponsorBatchEvent", trackers=(pghistory.InsertEvent("insert"),))
# Bills: issued, paid, expired, reopened by a channel's void. Suspense money and how an admin
# or a channel settled it (both append-only: inserts only).
_track(
    AuditedBill,
    "BillEvent",
    indexes=[models.Index(fields=["participant"], name="audit_bill_participant")],
)
_track(
    AuditedSuspenseItem,
    "SuspenseItemEvent",
    trackers=(pghistory.InsertEvent("insert"),),
    indexes=[models.Index(fields=["participant"], name="audit_suspense_participant")],
)
_track(
    AuditedSuspenseResolution,
    "SuspenseResolutionEvent",
    trackers=(pghistory.InsertEvent("insert"),),
    indexes=[models.Index(fields=["participant"], name="audit_resolution_participant")],
)
# Autodebit mandates: who set one up (the participant, or an agent with the participant's code)
# and who cancelled it (the participant, an agent, an admin, the channel). The charges are not
# tracked: each is a payment, audited with the payments.
_track(
    AuditedAutodebitMandate,
    "AutodebitMandateEvent",
    indexes=[models.Index(fields=["participant"], name="audit_mandate_participant")],
)
_track(AuditedTarget, "TargetEvent")
_track(AuditedTargetMilestone, "TargetMilestoneEvent")
_track(AuditedTargetBreakdown, "TargetBreakdownEvent")
_track(AuditedRateSchedule, "RateScheduleEvent")
_track(AuditedIncomeLevel, "IncomeLevelEvent")
_track(AuditedRateDiscount, "RateDiscountEvent")
_track(AuditedHoliday, "HolidayEvent")
# Perisai commissions: the rules, who works under which office, and every step of a statement
# (computed, approved, paid: an update each, with who did it).
_track(AuditedCommissionRule, "CommissionRuleEvent")
_track(AuditedPerisaiMembership, "PerisaiMembershipEvent")
_track(AuditedCommissionStatement, "CommissionStatementEvent")
_track(AuditedApiClient, "ApiClientEvent")
_track(AuditedStaffProfile, "StaffProfileEvent")
_track(AuditedUser, "UserEvent")
# Group and permission membership: the through tables have no model a key could point at.
_track(
    AuditedUserGroups,
    "UserGroupEvent",
    verbose_name=_("user group membership event"),
    verbose_name_plural=_("user group membership events"),
    trackers=(pghistory.InsertEvent("group.add"), pghistory.DeleteEvent("group.remove")),
    with_obj=False,
    indexes=[models.Index(fields=["user"], name="audit_usergroup_user")],
)
_track(
    AuditedUserPermissions,
    "UserPermissionEvent",
    verbose_name=_("user permission event"),
    verbose_name_plural=_("user permission events"),
    trackers=(
        pghistory.InsertEvent("permission.add"),
        pghistory.DeleteEvent("permission.remove"),
    ),
    with_obj=False,
    indexes=[models.Index(fields=["user"], name="audit_userperm_user")],
)
# Backup codes (bpjsportal/two_factor.py): issued (insert) and removed (delete) — the context says
# whether a code was used to log in (`backup_code: used`, with the user and IP of the request)
# or replaced by new ones (`backup_code: replaced`). The digest itself is not copied.
_track(
    AuditedStaticToken,
    "BackupCodeEvent",
    verbose_name=_("backup code event"),
    verbose_name_plural=_("backup code events"),
    trackers=(
        pghistory.InsertEvent("backup_code.issue"),
        pghistory.DeleteEvent("backup_code.remove"),
    ),
    with_obj=False,
    indexes=[models.Index(fields=["device"], name="audit_backupcode_device")],
)
