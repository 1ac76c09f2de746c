"""Serializers of the enrollment API, and the strict building blocks every API input uses:
no unknown fields, no strings for numbers or booleans, no numbers for strings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..models import Occupation, Participant, Region, mask_nik, programmes_for
from ..pii import decrypt_nik, note_disclosure

PROGRAMME_CHOICES = ["JKK", "JKM", "JHT"]


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not know (code unknown_field) and a body that is not an object."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        str(f): [
                            serializers.ErrorDetail(str(_("Unknown field.")), code="unknown_field")
                        ]
                        for f in unknown
                    }
                )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": _("Enter text.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": _("Enter a whole number.")}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("Enter true or false.")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def validate_programmes(value: list[str]) -> list[str]:
    if not {"JKK", "JKM"} <= set(value):
        raise serializers.ValidationError(
            _("Programmes must be JKK and JKM, optionally JHT."), code="programmes_invalid"
        )
    return value


class ProgrammesField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.ChoiceField(choices=PROGRAMME_CHOICES))
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("validators", [validate_programmes])
        super().__init__(**kwargs)


# --- output ---------------------------------------------------------------------------------
class RegionSerializer(serializers.ModelSerializer[Region]):
    level = serializers.SerializerMethodField()
    parent = serializers.CharField(source="parent_id", allow_null=True)  # type: ignore[assignment]

    class Meta:
        model = Region
        fields = ["code", "name", "level", "kind", "parent", "postal_code", "timezone"]

    def get_level(self, obj: Region) -> str:
        return LEVEL_NAMES[obj.level]


LEVEL_NAMES = {1: "province", 2: "regency", 3: "district", 4: "village"}
LEVELS_BY_NAME = {v: k for k, v in LEVEL_NAMES.items()}


class OccupationSerializer(serializers.ModelSerializer[Occupation]):
    class Meta:
        model = Occupation
        fields = ["code", "name_id", "name_en", "sector", "ktp_code"]


class ParticipantSerializer(serializers.ModelSerializer[Participant]):
    """The participant as clients see it. `mask_nik` in the context masks the NIK (lists)."""

    nik = serializers.SerializerMethodField()
    village = serializers.CharField(source="village_id")
    occupation = serializers.CharField(source="occupation_id")
    programmes = serializers.ListField(child=serializers.CharField())
    partner = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    paid_through = serializers.SerializerMethodField()
    registered_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Participant
        fields = [
            "id",
            "nik",
            "kpj_number",
            "full_name",
            "birth_date",
            "sex",
            "phone",
            "email",
            "village",
            "address",
            "occupation",
            "declared_income",
            "programmes",
            "channel",
            "partner",
            "consent_data",
            "consent_reminders",
            "status",
            "paid_through",
            "registered_at",
            "updated_at",
        ]

    def get_nik(self, obj: Participant) -> str:
        if self.context.get("mask_nik"):
            return mask_nik(obj.nik)
        note_disclosure(obj.pk)  # the full NIK leaves the system: logged per request
        return obj.nik

    def get_partner(self, obj: Participant) -> str | None:
        return obj.partner.code if obj.partner_id and obj.partner else None

    def get_status(self, obj: Participant) -> str | None:
        return getattr(obj, "coverage_status", None)

    def get_paid_through(self, obj: Participant) -> str | None:
        value = getattr(obj, "coverage_paid_through", None)
        return value.isoformat() if value else None


# The sync page's rows without a serializer: at a million rows a catch-up spends most of its
# time in per-field serializer calls. `participant_values` is what `participant_row` reads;
# `participant_row(values, mask_nik)` equals ParticipantSerializer(...).data for the same
# participant and context (tests/api/test_sync_fast.py compares them field by field).
PARTICIPANT_VALUES = (
    "id",
    "nik_encrypted",
    "kpj_number",
    "full_name",
    "birth_date",
    "sex",
    "phone",
    "email",
    "village_id",
    "address",
    "occupation_id",
    "declared_income",
    "jht",
    "channel",
    "partner__code",
    "consent_data",
    "consent_reminders",
    "created_at",
    "updated_at",
    "sync_txid",
)
# annotations of the participant decorators (contributions.selectors.with_coverage_status),
# read when the queryset has them
DECORATED_VALUES = ("coverage_status", "coverage_paid_through")


def _iso(value: datetime, tz: tzinfo) -> str:
    """DRF's DateTimeField representation (USE_TZ: in the current time zone, ISO 8601, "Z"
    for UTC), without its per-call settings look-ups."""
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def participant_values(qs: QuerySet[Participant]) -> QuerySet[Participant, dict[str, Any]]:
    """`qs` (decorated with the coverage status, enrollment.api.scopes) as the dicts
    `participant_row` turns into the API's representation."""
    present = [name for name in DECORATED_VALUES if name in qs.query.annotations]
    return qs.values(*PARTICIPANT_VALUES, *present)


def participant_row(v: dict[str, Any], *, mask: bool, tz: tzinfo | None = None) -> dict[str, Any]:
    """One `participant_values` row as the API shows it; pass `tz` (the current time zone)
    when converting many rows."""
    tz = tz or timezone.get_current_timezone()
    nik = decrypt_nik(v["nik_encrypted"])
    if mask:
        nik = mask_nik(nik)
    else:
        note_disclosure(v["id"])  # the full NIK leaves the system: logged per request
    paid_through = v.get("coverage_paid_through")
    return {
        "id": v["id"],
        "nik": nik,
        "kpj_number": v["kpj_number"],
        "full_name": v["full_name"],
        "birth_date": v["birth_date"].isoformat(),
        "sex": v["sex"],
        "phone": v["phone"],
        "email": v["email"],
        "village": v["village_id"],
        "address": v["address"],
        "occupation": v["occupation_id"],
        "declared_income": v["declared_income"],
        "programmes": programmes_for(jht=v["jht"]),
        "channel": v["channel"],
        "partner": v["partner__code"],
        "consent_data": v["consent_data"],
        "consent_reminders": v["consent_reminders"],
        "status": v.get("coverage_status"),
        "paid_through": paid_through.isoformat() if paid_through else None,
        "registered_at": _iso(v["created_at"], tz),
        "updated_at": _iso(v["updated_at"], tz),
    }


# --- input ----------------------------------------------------------------------------------
class ParticipantInput(StrictSerializer):
    """Registration. Field rules live in enrollment.services.register_participant; this only
    checks shapes and types, so a rule is never written twice."""

    nik = StrictCharField(max_length=64, trim_whitespace=False)
    full_name = StrictCharField(max_length=200)
    birth_date = serializers.DateField()
    sex = StrictCharField(max_length=8)
    phone = StrictCharField(max_length=32)
    email = StrictCharField(max_length=254, required=False, allow_blank=True, default="")
    village = StrictCharField(max_length=32)
    address = StrictCharField(max_length=300)
    occupation = StrictCharField(max_length=32)
    declared_income = StrictIntegerField(min_value=1, max_value=10**12)
    programmes = ProgrammesField(required=False, default=["JKK", "JKM"])
    consent_data = StrictBooleanField()
    consent_reminders = StrictBooleanField(required=False, default=False)
    language = serializers.ChoiceField(choices=["id", "en"], required=False, default="id")
    # Admin clients only: the channel and the partner of the registration.
    channel = serializers.ChoiceField(choices=Participant.Channel.values, required=False)
    partner = StrictCharField(max_length=32, required=False)


class ParticipantPatchInput(StrictSerializer):
    """The fields a client may change. NIK, birth date, sex and name are fixed."""

    phone = StrictCharField(max_length=32, required=False)
    email = StrictCharField(max_length=254, required=False, allow_blank=True)
    village = StrictCharField(max_length=32, required=False)
    address = StrictCharField(max_length=300, required=False)
    occupation = StrictCharField(max_length=32, required=False)
    declared_income = StrictIntegerField(min_value=1, max_value=10**12, required=False)
    programmes = ProgrammesField(required=False)
    consent_data = StrictBooleanField(required=False)
    consent_reminders = StrictBooleanField(required=False)
    language = serializers.ChoiceField(choices=["id", "en"], required=False)

    FIXED = ("nik", "birth_date", "sex", "full_name", "kpj_number")

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fixed = [f for f in self.FIXED if f in data]
            if fixed:
                raise serializers.ValidationError(
                    {
                        f: [
                            serializers.ErrorDetail(
                                str(_("This field cannot be changed through the API.")),
                                code="field_not_changeable",
                            )
                        ]
                        for f in fixed
                    }
                )
        return super().to_internal_value(data)


class BulkInput(StrictSerializer):
    rows = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=1000, allow_empty=False
    )
    # "update" (default): a NIK that exists in the client's scope is updated (an upsert);
    # "refuse": every existing NIK is refused duplicate_nik (registrations only: the field app).
    on_existing = serializers.ChoiceField(
        choices=["update", "refuse"], required=False, default="update"
    )


class RowResultSerializer(serializers.Serializer[Any]):
    row = serializers.IntegerField()
    nik = serializers.CharField()
    result = serializers.ChoiceField(choices=["created", "updated", "unchanged", "error"])
    id = serializers.IntegerField(allow_null=True)
    kpj_number = serializers.CharField(allow_null=True)
    errors = serializers.ListField(child=serializers.DictField())  # type: ignore[assignment]


class BulkOutput(serializers.Serializer[Any]):
    results = RowResultSerializer(many=True)
    summary = serializers.DictField(child=serializers.IntegerField())


class SyncParticipantsOutput(serializers.Serializer[Any]):
    results = ParticipantSerializer(many=True)
    next_token = serializers.CharField()
    has_more = serializers.BooleanField()


class ErrorItemSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]


def paginated(name: str, item: type[serializers.BaseSerializer[Any]]) -> type[Any]:
    """The schema of a cursor-paginated list of `item` (next/previous are page URLs)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": item(many=True),
        },
    )


PaginatedParticipants = paginated("PaginatedParticipants", ParticipantSerializer)
PaginatedRegions = paginated("PaginatedRegions", RegionSerializer)
