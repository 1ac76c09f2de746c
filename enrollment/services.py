"""Write paths of enrollment. `register_participant` is the one way a worker gets registered:
the browser form, the admin, the API and bulk import all call it."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from . import hooks
from .errors import DuplicateNik, FieldError, RegistrationError
from .kpj import next_kpj_number
from .models import NikPrefix, Occupation, Participant, Partner, Region, StaffProfile, nik_q
from .nik import NikError, parse_nik

NAME_MAX = 100
ADDRESS_MAX = 255
# Letters of any script, joined by single spaces, apostrophes, dots, commas or hyphens.
_NAME_RE = re.compile(r"[^\W\d_]+(?:[ '.,\-]{1,2}[^\W\d_]+)*\.?")


PHONE_MESSAGE = _("Enter an Indonesian mobile number, e.g. 0812 3456 7890 or +62 812 3456 7890.")


def age_on(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def normalize_phone(value: str) -> str:
    """Indonesian mobile number (08…, 628…, +628…) → E.164 (+628…); ValueError if not one."""
    raw = (value or "").strip()
    if raw.startswith("62"):
        raw = "+" + raw
    try:
        number = phonenumbers.parse(raw, "ID")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from exc
    if number.country_code != 62 or not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid Indonesian number")
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValueError("not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_full_name(value: str) -> str:
    return " ".join((value or "").split())


def _validate_identity(
    errors: list[FieldError], *, nik: str, full_name: str, birth_date: date, sex: str, today: date
) -> None:
    if not full_name:
        errors.append(FieldError("full_name", "name_required", _("Enter the full name.")))
    elif len(full_name) > NAME_MAX:
        errors.append(
            FieldError("full_name", "name_too_long", _("The name is longer than 100 characters."))
        )
    elif not _NAME_RE.fullmatch(full_name):
        errors.append(
            FieldError(
                "full_name",
                "name_invalid",
                _("The name may only contain letters, spaces, apostrophes, dots and hyphens."),
            )
        )
    if sex not in Participant.Sex.values:
        errors.append(FieldError("sex", "sex_invalid", _("Choose male or female.")))
    if birth_date > today:
        errors.append(
            FieldError("birth_date", "birth_date_future", _("The birth date is in the future."))
        )
    else:
        age = age_on(birth_date, today)
        if not settings.BPU_MIN_AGE <= age <= settings.BPU_MAX_AGE:
            errors.append(
                FieldError(
                    "birth_date",
                    "age_out_of_range",
                    _(
                        "BPU participants must be %(min)s to %(max)s years old "
                        "(this one is %(age)s)."
                    )
                    % {"min": settings.BPU_MIN_AGE, "max": settings.BPU_MAX_AGE, "age": age},
                )
            )
    try:
        parsed = parse_nik(nik, today=today)
    except NikError as exc:
        errors.append(FieldError("nik", exc.code, exc.message))
        return
    if not NikPrefix.objects.filter(code=parsed.prefix6).exists():
        errors.append(
            FieldError(
                "nik",
                "nik_region_unknown",
                _("The NIK's first six digits (%(prefix)s) are not a known district code.")
                % {"prefix": parsed.prefix6},
            )
        )
    if parsed.birth_date != birth_date:
        errors.append(
            FieldError(
                "nik",
                "nik_birth_date_mismatch",
                _("The NIK says born %(nik_date)s, which does not match the birth date entered.")
                % {"nik_date": parsed.birth_date.strftime("%d-%m-%Y")},
            )
        )
    if sex in Participant.Sex.values and parsed.sex != sex:
        errors.append(
            FieldError(
                "nik",
                "nik_sex_mismatch",
                _("The NIK's birth day does not match the sex entered (women add 40 to the day)."),
            )
        )


@transaction.atomic
def register_participant(
    *,
    nik: str,
    full_name: str,
    birth_date: date,
    sex: str,
    phone: str,
    village: Region | str,
    address: str,
    occupation: Occupation | str,
    declared_income: int,
    channel: str,
    consent_data: bool,
    registered_by: StaffProfile | None = None,
    jht: bool = False,
    email: str = "",
    partner: Partner | None = None,
    consent_reminders: bool = False,
    language: str = "id",
    client_token: uuid.UUID | None = None,
    today: date | None = None,
) -> Participant:
    """Register one worker, or raise RegistrationError listing every broken rule.

    Nothing is written when it raises. A repeated `client_token` (a double-submitted form or a
    retried request) returns the participant the first submission created.
    """
    if client_token is not None:
        existing = Participant.objects.filter(client_token=client_token).first()
        if existing is not None:
            return existing

    today = today or timezone.localdate()
    errors: list[FieldError] = []
    nik = nik if isinstance(nik, str) else ""
    full_name = clean_full_name(full_name)
    _validate_identity(
        errors, nik=nik, full_name=full_name, birth_date=birth_date, sex=sex, today=today
    )

    phone_e164 = _clean_phone(errors, phone)
    email = _clean_email(errors, email)
    village_obj = _clean_village(errors, village)
    address = _clean_address(errors, address)
    occupation_obj = _clean_occupation(errors, occupation)
    _check_income(errors, declared_income, today)
    if channel not in Participant.Channel.values:
        errors.append(FieldError("channel", "channel_invalid", _("Unknown registration channel.")))
    if consent_data is not True:
        errors.append(
            FieldError(
                "consent_data",
                "consent_required",
                _("The worker must agree to the processing of their data (UU 27/2022)."),
            )
        )
    if language not in ("id", "en"):
        language = "id"
    if errors:
        raise RegistrationError(errors)
    assert village_obj is not None and occupation_obj is not None
    if settings.NIK_HMAC_OLD_KEY and Participant.objects.filter(nik_q(nik)).exists():
        # An HMAC key rotation is running: rows not yet rehashed carry the old digest, which
        # the unique constraint cannot compare with the new one (docs/operations.md).
        raise _duplicate(nik)

    chain = village_obj.code.split(".")
    participant = Participant(
        kpj_number=next_kpj_number(),
        full_name=full_name,
        birth_date=birth_date,
        sex=sex,
        phone=phone_e164,
        email=email,
        language=language,
        village=village_obj,
        province_id=chain[0],
        regency_id=".".join(chain[:2]),
        address=address,
        occupation=occupation_obj,
        declared_income=declared_income,
        jht=bool(jht),
        channel=channel,
        registered_by=registered_by,
        branch=registered_by.branch if registered_by else None,
        partner=partner,
        consent_data=True,
        consent_reminders=bool(consent_reminders),
        client_token=client_token,
    )
    participant.nik = nik  # stored as its digest and ciphertext (enrollment/pii.py)
    try:
        with transaction.atomic():  # savepoint: the unique constraints are the real guard
            participant.save(force_insert=True)
    except IntegrityError as exc:
        if client_token is not None and "client_token" in str(exc):
            return Participant.objects.get(client_token=client_token)
        raise _duplicate(nik) from exc
    hooks.after_registration(participant)
    return participant


# --- field checks shared by register_participant and update_participant ------------------
def _clean_phone(errors: list[FieldError], value: object) -> str:
    try:
        return normalize_phone(str(value or ""))
    except ValueError:
        errors.append(FieldError("phone", "phone_invalid", PHONE_MESSAGE))
        return ""


def _clean_email(errors: list[FieldError], value: object) -> str:
    email = str(value or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.append(FieldError("email", "email_invalid", _("Enter a valid email address.")))
    return email


def _clean_village(errors: list[FieldError], value: Region | str) -> Region | None:
    village = _resolve_village(value)
    if village is None:
        errors.append(
            FieldError("village", "village_unknown", _("Choose a village from the list."))
        )
    return village


def _clean_address(errors: list[FieldError], value: object) -> str:
    address = " ".join(str(value or "").split())
    if not address:
        errors.append(FieldError("address", "address_required", _("Enter the address.")))
    elif len(address) > ADDRESS_MAX:
        errors.append(
            FieldError("address", "address_too_long", _("The address is too long (max 255)."))
        )
    return address


def _clean_occupation(errors: list[FieldError], value: Occupation | str) -> Occupation | None:
    occupation = (
        value
        if isinstance(value, Occupation)
        else Occupation.objects.filter(code=str(value)).first()
    )
    if occupation is None:
        errors.append(
            FieldError("occupation", "occupation_unknown", _("Choose an occupation from the list."))
        )
    return occupation


def _check_income(errors: list[FieldError], value: object, today: date) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(
            FieldError("declared_income", "income_invalid", _("Enter the income in whole Rupiah."))
        )
        return
    try:
        hooks.check_income(value, today)
    except RegistrationError as exc:
        errors.extend(exc.errors)


def _resolve_village(village: Region | str) -> Region | None:
    if isinstance(village, Region):
        return village if village.level == Region.Level.VILLAGE else None
    if not isinstance(village, str) or len(village) > 13:
        return None
    return Region.objects.filter(code=village, level=Region.Level.VILLAGE).first()


def _duplicate(nik: str) -> DuplicateNik:
    existing = (
        Participant.objects.filter(nik_q(nik))
        .select_related("branch", "registered_by__user")
        .first()
    )
    message: str | Promise
    if existing is not None and existing.branch is not None:
        message = _(
            "This NIK is already registered (KPJ %(kpj)s). Contact branch %(branch)s to update "
            "or reactivate the participant."
        ) % {"kpj": existing.kpj_number, "branch": existing.branch.name}
    else:
        message = _(
            "This NIK is already registered. Contact the nearest BPJS Ketenagakerjaan branch."
        )
    return DuplicateNik(nik, message, existing.pk if existing else None)


UPDATABLE_FIELDS = (
    "phone",
    "email",
    "address",
    "occupation",
    "declared_income",
    "jht",
    "consent_reminders",
    "language",
    "village",
)


@transaction.atomic
def update_participant(
    *, participant: Participant, today: date | None = None, **changes: Any
) -> Participant:
    """Change the fields a participant may change; NIK, birth date and sex are fixed."""
    today = today or timezone.localdate()
    errors: list[FieldError] = []
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    for field in sorted(unknown):
        errors.append(FieldError(field, "field_not_changeable", _("This field cannot be changed.")))
    if "phone" in changes:
        changes["phone"] = _clean_phone(errors, changes["phone"])
    if "email" in changes:
        changes["email"] = _clean_email(errors, changes["email"])
    if "declared_income" in changes:
        _check_income(errors, changes["declared_income"], today)
    if "occupation" in changes:
        changes["occupation"] = _clean_occupation(errors, changes["occupation"])
    if "village" in changes:
        village = _clean_village(errors, changes["village"])
        if village is not None:
            chain = village.code.split(".")
            changes.update(village=village, province_id=chain[0], regency_id=".".join(chain[:2]))
    if "address" in changes:
        changes["address"] = _clean_address(errors, changes["address"])
    if errors:
        raise RegistrationError(errors)
    for field, value in changes.items():
        setattr(participant, field, value)
    participant.save()
    return participant
