"""Write paths of enrollment. `register_participant` is the one way a worker gets registered:
the browser form, the admin, the API and bulk import all call it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date
from typing import Any, Protocol

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from bpjsportal.core.api.errors import FieldError

from . import core_system, hooks, pii, unique_keys
from .errors import DuplicateNik, RegistrationError
from .models import (
    NikPrefix,
    Occupation,
    OccupationPeriod,
    Participant,
    Partner,
    Region,
    StaffProfile,
    nik_q,
)
from .nik import NikError, parse_nik

NAME_MAX = 100
ADDRESS_MAX = 255
# Letters of any script, joined by single spaces, apostrophes, dots, commas or hyphens.
_NAME_RE = re.compile(r"[^\W\d_]+(?:[ '.,\-]{1,2}[^\W\d_]+)*\.?")


# Choices.values builds a new list on every access; registration checks these per row.
SEXES = tuple(Participant.Sex.values)
CHANNELS = tuple(Participant.Channel.values)

PHONE_MESSAGE = _("Enter an Indonesian mobile number, e.g. 0812 3456 7890 or +62 812 3456 7890.")

# Every registration rule's message by its code: the one home of these words, read by the
# checks below and by the field app's offline copy of the rules (contributions/field), so the
# browser refuses with the server's own sentence. Templates with %(name)s are formatted by
# both with the same names.
RULE_MESSAGES = {
    "name_required": _("Enter the full name."),
    "name_too_long": _("The name is longer than 100 characters."),
    "name_invalid": _("The name may only contain letters, spaces, apostrophes, dots and hyphens."),
    "sex_invalid": _("Choose male or female."),
    "birth_date_future": _("The birth date is in the future."),
    # Not raised here (a birth date arrives as a date): the field app's offline form says it for
    # a missing or impossible date, in Django's own words (translated by Django's catalogue).
    "birth_date_invalid": _("Enter a valid date."),
    "age_out_of_range": _(
        "BPU participants must be %(min)s to %(max)s years old (this one is %(age)s)."
    ),
    "nik_region_unknown": _(
        "The NIK's first six digits (%(prefix)s) are not a known district code."
    ),
    "nik_birth_date_mismatch": _(
        "The NIK says born %(nik_date)s, which does not match the birth date entered."
    ),
    "nik_sex_mismatch": _(
        "The NIK's birth day does not match the sex entered (women add 40 to the day)."
    ),
    "phone_invalid": PHONE_MESSAGE,
    "email_invalid": _("Enter a valid email address."),
    "village_unknown": _("Choose a village from the list."),
    "address_required": _("Enter the address."),
    "address_too_long": _("The address is too long (max 255)."),
    "occupation_unknown": _("Choose an occupation from the list."),
    "income_invalid": _("Enter the income in whole Rupiah."),
    "channel_invalid": _("Unknown registration channel."),
    "consent_required": _("The worker must agree to the processing of their data (UU 27/2022)."),
}


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
    if number.country_code != 62:
        raise ValueError("not an Indonesian number")
    # number_type is UNKNOWN for an invalid number, so this also checks validity (a separate
    # is_valid_number call would match the same patterns again: a third of the cost per row).
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValueError("not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_full_name(value: str) -> str:
    return " ".join((value or "").split())


class ReferenceLookup(Protocol):
    """The reference data registration checks read: NIK prefixes, villages, occupations."""

    def prefix_known(self, prefix6: str) -> bool: ...
    def village(self, code: str) -> Region | None: ...
    def occupation(self, code: str) -> Occupation | None: ...


class _DatabaseLookup:
    """One query per question: the single-row paths."""

    def prefix_known(self, prefix6: str) -> bool:
        return NikPrefix.objects.filter(code=prefix6).exists()

    def village(self, code: str) -> Region | None:
        return Region.objects.filter(code=code, level=Region.Level.VILLAGE).first()

    def occupation(self, code: str) -> Occupation | None:
        return Occupation.objects.filter(code=code).first()


DATABASE_LOOKUP = _DatabaseLookup()


@dataclass
class ReferenceSnapshot:
    """The reference data a batch of rows needs, read in three queries: the bulk path."""

    prefixes: set[str] = dc_field(default_factory=set)
    villages: dict[str, Region] = dc_field(default_factory=dict)
    occupations: dict[str, Occupation] = dc_field(default_factory=dict)

    @classmethod
    def for_rows(cls, rows: Iterable[dict[str, Any]]) -> ReferenceSnapshot:
        prefixes: set[str] = set()
        villages: set[str] = set()
        occupations: set[str] = set()
        for row in rows:
            nik = row.get("nik")
            if isinstance(nik, str) and len(nik) >= 6:
                prefixes.add(nik[:6])
            village = row.get("village")
            if isinstance(village, str) and len(village) <= 13:
                villages.add(village)
            occupation = row.get("occupation")
            if not isinstance(occupation, Occupation):
                occupations.add(str(occupation))
        return cls(
            prefixes=set(
                NikPrefix.objects.filter(code__in=prefixes).values_list("code", flat=True)
            ),
            villages={
                r.code: r
                for r in Region.objects.filter(code__in=villages, level=Region.Level.VILLAGE)
            },
            occupations={o.code: o for o in Occupation.objects.filter(code__in=occupations)},
        )

    def prefix_known(self, prefix6: str) -> bool:
        return prefix6 in self.prefixes

    def village(self, code: str) -> Region | None:
        return self.villages.get(code)

    def occupation(self, code: str) -> Occupation | None:
        return self.occupations.get(code)


def _validate_identity(
    errors: list[FieldError],
    *,
    nik: str,
    full_name: str,
    birth_date: date,
    sex: str,
    today: date,
    ref: ReferenceLookup = DATABASE_LOOKUP,
) -> None:
    if not full_name:
        errors.append(FieldError("full_name", "name_required", RULE_MESSAGES["name_required"]))
    elif len(full_name) > NAME_MAX:
        errors.append(FieldError("full_name", "name_too_long", RULE_MESSAGES["name_too_long"]))
    elif not _NAME_RE.fullmatch(full_name):
        errors.append(
            FieldError(
                "full_name",
                "name_invalid",
                RULE_MESSAGES["name_invalid"],
            )
        )
    if sex not in SEXES:
        errors.append(FieldError("sex", "sex_invalid", RULE_MESSAGES["sex_invalid"]))
    if birth_date > today:
        errors.append(
            FieldError("birth_date", "birth_date_future", RULE_MESSAGES["birth_date_future"])
        )
    else:
        age = age_on(birth_date, today)
        if not settings.BPU_MIN_AGE <= age <= settings.BPU_MAX_AGE:
            errors.append(
                FieldError(
                    "birth_date",
                    "age_out_of_range",
                    RULE_MESSAGES["age_out_of_range"]
                    % {"min": settings.BPU_MIN_AGE, "max": settings.BPU_MAX_AGE, "age": age},
                )
            )
    try:
        parsed = parse_nik(nik, today=today)
    except NikError as exc:
        errors.append(FieldError("nik", exc.code, exc.message))
        return
    if not ref.prefix_known(parsed.prefix6):
        errors.append(
            FieldError(
                "nik",
                "nik_region_unknown",
                RULE_MESSAGES["nik_region_unknown"] % {"prefix": parsed.prefix6},
            )
        )
    if parsed.birth_date != birth_date:
        errors.append(
            FieldError(
                "nik",
                "nik_birth_date_mismatch",
                RULE_MESSAGES["nik_birth_date_mismatch"]
                % {"nik_date": parsed.birth_date.strftime("%d-%m-%Y")},
            )
        )
    if sex in SEXES and parsed.sex != sex:
        errors.append(
            FieldError(
                "nik",
                "nik_sex_mismatch",
                RULE_MESSAGES["nik_sex_mismatch"],
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

    participant = _checked_participant(
        DATABASE_LOOKUP,
        today or timezone.localdate(),
        nik=nik,
        full_name=full_name,
        birth_date=birth_date,
        sex=sex,
        phone=phone,
        village=village,
        address=address,
        occupation=occupation,
        declared_income=declared_income,
        channel=channel,
        consent_data=consent_data,
        registered_by=registered_by,
        jht=jht,
        email=email,
        partner=partner,
        consent_reminders=consent_reminders,
        language=language,
    )
    participant.client_token = client_token
    if settings.NIK_HMAC_OLD_KEY and Participant.objects.filter(nik_q(nik)).exists():
        # An HMAC key rotation is running: rows not yet rehashed carry the old digest, which
        # the unique constraint cannot compare with the new one (docs/operations.md).
        raise duplicate_nik_error(nik)
    numbers = core_system.issuer()
    for _attempt in range(KPJ_ATTEMPTS):
        # the core system's number, or (development) the local generator's (core_system.py)
        participant.kpj_number = numbers.issue([_holder(participant, nik)])[0]
        try:
            # No savepoint: the NIK, KPJ number and client token are claimed first
            # (enrollment/unique_keys.py: INSERT ... ON CONFLICT DO NOTHING, which waits for a
            # concurrent claim to commit or roll back), and a value held already raises KeyTaken
            # before the participant's INSERT, with no statement failed.
            participant.save(force_insert=True)
        except unique_keys.KeyTaken as exc:
            if _violated(exc) == KPJ_CONSTRAINT and numbers.redraws:
                continue  # a number issued before the permutation (enrollment/kpj.py): redraw
            if _violated(exc) == KPJ_CONSTRAINT:
                raise RuntimeError("the core system issued a KPJ number held by another") from exc
            if client_token is not None and "client_token" in _violated(exc) + str(exc):
                return Participant.objects.get(client_token=client_token)
            raise duplicate_nik_error(nik) from exc
        hooks.after_registration(participant)
        return participant
    raise RuntimeError("no free KPJ number after several draws")


# The unique constraint of kpj_number (Django's name for `unique=True`), and how many numbers a
# registration draws before giving up: a new number meets an issued one about once per
# 10^10 / (numbers issued by other means) draws (enrollment/kpj.py).
KPJ_CONSTRAINT = "enrollment_participant_kpj_number_key"
KPJ_ATTEMPTS = 5


def _violated(exc: IntegrityError) -> str:
    """The name of the constraint an IntegrityError broke ("" if PostgreSQL did not say)."""
    if isinstance(exc, unique_keys.KeyTaken):  # claimed already (enrollment/unique_keys.py)
        return exc.constraint
    diag = getattr(exc.__cause__, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


def _checked_participant(
    ref: ReferenceLookup,
    today: date,
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
) -> Participant:
    """Every registration rule, in one place for the single and the bulk path: an unsaved
    participant (no KPJ number yet), or RegistrationError listing every broken rule."""
    errors: list[FieldError] = []
    nik = nik if isinstance(nik, str) else ""
    full_name = clean_full_name(full_name)
    _validate_identity(
        errors, nik=nik, full_name=full_name, birth_date=birth_date, sex=sex, today=today, ref=ref
    )

    phone_e164 = _clean_phone(errors, phone)
    email = _clean_email(errors, email)
    village_obj = _clean_village(errors, village, ref)
    address = _clean_address(errors, address)
    occupation_obj = _clean_occupation(errors, occupation, ref)
    _check_income(errors, declared_income, today)
    if channel not in CHANNELS:
        errors.append(FieldError("channel", "channel_invalid", RULE_MESSAGES["channel_invalid"]))
    if consent_data is not True:
        errors.append(
            FieldError(
                "consent_data",
                "consent_required",
                RULE_MESSAGES["consent_required"],
            )
        )
    if language not in ("id", "en"):
        language = "id"
    if errors:
        raise RegistrationError(errors)
    assert village_obj is not None and occupation_obj is not None

    chain = village_obj.code.split(".")
    participant = Participant(
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
    )
    participant.nik = nik  # stored as its digest and ciphertext (enrollment/pii.py)
    return participant


# --- many rows at once ------------------------------------------------------------------------
BULK_COLUMNS = (
    ("nik_digest", "bytea"),
    ("nik_encrypted", "text"),
    ("kpj_number", "text"),
    ("full_name", "text"),
    ("birth_date", "date"),
    ("sex", "text"),
    ("phone", "text"),
    ("email", "text"),
    ("language", "text"),
    ("village_id", "text"),
    ("province_id", "text"),
    ("regency_id", "text"),
    ("address", "text"),
    ("occupation_id", "text"),
    ("declared_income", "bigint"),
    ("jht", "boolean"),
    ("channel", "text"),
    ("registered_by_id", "bigint"),
    ("branch_id", "bigint"),
    ("partner_id", "bigint"),
    ("consent_data", "boolean"),
    ("consent_reminders", "boolean"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
# One statement for the whole batch; a NIK registered meanwhile (another request) is skipped by
# the unique digest index and reported as a duplicate, as the single path reports it (a KPJ
# number that meets an issued one is skipped too, and retried: _insert_many).
# The ids come from the participants' sequence first: the rows' unique keys are claimed under
# them before the INSERT (enrollment/unique_keys.py).
BULK_INSERT = (  # noqa: S608 - built from the constant column list above, no input
    "INSERT INTO enrollment_participant (id, {cols}) SELECT * FROM unnest(%s::bigint[], {arrays}) "
    "ON CONFLICT DO NOTHING RETURNING id, nik_digest, sync_txid"
).format(
    cols=", ".join(c for c, _ in BULK_COLUMNS),
    arrays=", ".join(f"%s::{t}[]" for _, t in BULK_COLUMNS),
)


@transaction.atomic
def register_participants_bulk(
    rows: list[dict[str, Any]], *, today: date | None = None
) -> list[Participant | RegistrationError]:
    """Register many workers: for each row (register_participant's keyword arguments, without
    client_token) the created Participant or the RegistrationError register_participant would
    raise for it, called row by row in this order — same rules, codes and messages.

    The reference data is read once for the batch, KPJ numbers come from one sequence round
    trip, the rows go in with one INSERT … ON CONFLICT and the after-registration steps run in
    their bulk form (e.g. one INSERT of coverage rows). A NIK twice in `rows`: the first valid
    row registers it, the later ones get the duplicate error.
    """
    today = today or timezone.localdate()
    ref = ReferenceSnapshot.for_rows(rows)
    outcomes: list[Participant | RegistrationError] = []
    pending: list[tuple[int, Participant]] = []
    first_of: dict[bytes, int] = {}
    for i, row in enumerate(rows):
        try:
            p = _checked_participant(ref, today, **row)
        except RegistrationError as exc:
            outcomes.append(exc)
            continue
        outcomes.append(p)
        digest = bytes(p.nik_digest)
        if digest in first_of:
            continue  # a later row with the same NIK: a duplicate once the first is in
        first_of[digest] = i
        pending.append((i, p))
    if settings.NIK_HMAC_OLD_KEY:  # HMAC key rotation running: see register_participant
        old = pii.lookup_digests_many(p.nik for _, p in pending)
        taken = {
            old[bytes(d)]
            for d in Participant.objects.filter(nik_digest__in=list(old)).values_list(
                "nik_digest", flat=True
            )
        }
        pending = [(i, p) for i, p in pending if p.nik not in taken]

    inserted = _insert_many([p for _, p in pending])
    created: list[Participant] = []
    for i, row in enumerate(rows):
        outcome = outcomes[i]
        if not isinstance(outcome, Participant):
            continue
        digest = bytes(outcome.nik_digest)
        if first_of.get(digest) == i and digest in inserted:
            outcome.pk, outcome.sync_txid = inserted[digest]
            outcome._state.adding, outcome._state.db = False, "default"
            created.append(outcome)
        else:  # the NIK was registered before (by another request or an earlier row)
            outcomes[i] = duplicate_nik_error(row["nik"])
    hooks.after_registration_bulk(created)
    return outcomes


def _insert_many(participants: list[Participant]) -> dict[bytes, tuple[int, int]]:
    """INSERT the participants in one statement; digest → (id, sync_txid) of those inserted.

    A row skipped by ON CONFLICT is a NIK registered meanwhile, or - rarely - a new KPJ number
    equal to one issued by other means (enrollment/kpj.py): those rows get new numbers and go
    in again; only when rows were skipped does this cost one more query."""
    if not participants:
        return {}
    now = timezone.now()
    for p in participants:
        p.created_at = p.updated_at = now
    inserted: dict[bytes, tuple[int, int]] = {}
    pending = participants
    numbers = core_system.issuer()
    for _attempt in range(KPJ_ATTEMPTS):
        issued = numbers.issue([_holder(p, p.nik) for p in pending])
        for p, kpj in zip(pending, issued, strict=True):
            p.kpj_number = kpj
        inserted.update(_insert_rows(pending))
        skipped = [p for p in pending if bytes(p.nik_digest) not in inserted]
        if not skipped:
            return inserted
        registered = {
            bytes(d)
            for d in Participant.objects.filter(
                nik_digest__in=[p.nik_digest for p in skipped]
            ).values_list("nik_digest", flat=True)
        }
        pending = [p for p in skipped if bytes(p.nik_digest) not in registered]
        if not pending:
            return inserted
        if not numbers.redraws:
            raise RuntimeError("the core system issued KPJ numbers held by others")
    raise RuntimeError("no free KPJ numbers after several draws")


def _holder(participant: Participant, nik: str) -> core_system.NewHolder:
    return core_system.NewHolder(nik, participant.full_name, participant.birth_date)


def _insert_rows(participants: list[Participant]) -> dict[bytes, tuple[int, int]]:
    """Claim the rows' unique keys (NIK, KPJ number) and INSERT the rows whose keys were all
    free; a row with a key held already is left out (the caller tells a registered NIK from a
    KPJ number to draw again), and its other claims are given back."""
    ordered = sorted(participants, key=lambda p: bytes(p.nik_digest))
    for p, pk in zip(ordered, unique_keys.next_participant_ids(len(ordered)), strict=True):
        p.pk = pk
    wanted = [k for p in ordered for k in p.unique_keys()]
    taken = unique_keys.claim(wanted)
    free = [p for p in ordered if not any((k, v) in taken for k, v, _i in p.unique_keys())]
    if len(free) < len(ordered):
        kept = {(k, v) for p in free for k, v, _i in p.unique_keys()}
        unique_keys.release({(k, v) for k, v, _i in wanted} - taken - kept)
    columns: list[list[Any]] = [[p.pk for p in free]] + [[] for _ in BULK_COLUMNS]
    # KPJ numbers follow the rows; the INSERT goes in digest order, so two requests inserting the
    # same new NIKs take the index entries in the same order and wait instead of deadlocking.
    for p in free:
        for values, (name, _type) in zip(columns[1:], BULK_COLUMNS, strict=True):
            values.append(getattr(p, name))
    with connection.cursor() as cursor:
        cursor.execute(BULK_INSERT, columns)
        inserted = {bytes(d): (int(pk), int(txid)) for pk, d, txid in cursor.fetchall()}
    # a row the INSERT skipped all the same (a value the row's own constraint knows and no claim
    # did: a KPJ number written without one) gives its claims back before it is tried again
    unique_keys.release(
        (k, v) for p in free if bytes(p.nik_digest) not in inserted for k, v, _i in p.unique_keys()
    )
    return inserted


# --- field checks shared by register_participant and update_participant ------------------
def _clean_phone(errors: list[FieldError], value: object) -> str:
    try:
        return normalize_phone(str(value or ""))
    except ValueError:
        errors.append(FieldError("phone", "phone_invalid", RULE_MESSAGES["phone_invalid"]))
        return ""


def _clean_email(errors: list[FieldError], value: object) -> str:
    email = str(value or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.append(FieldError("email", "email_invalid", RULE_MESSAGES["email_invalid"]))
    return email


def _clean_village(
    errors: list[FieldError], value: Region | str, ref: ReferenceLookup = DATABASE_LOOKUP
) -> Region | None:
    village = _resolve_village(value, ref)
    if village is None:
        errors.append(FieldError("village", "village_unknown", RULE_MESSAGES["village_unknown"]))
    return village


def _clean_address(errors: list[FieldError], value: object) -> str:
    address = " ".join(str(value or "").split())
    if not address:
        errors.append(FieldError("address", "address_required", RULE_MESSAGES["address_required"]))
    elif len(address) > ADDRESS_MAX:
        errors.append(FieldError("address", "address_too_long", RULE_MESSAGES["address_too_long"]))
    return address


def _clean_occupation(
    errors: list[FieldError], value: Occupation | str, ref: ReferenceLookup = DATABASE_LOOKUP
) -> Occupation | None:
    occupation = value if isinstance(value, Occupation) else ref.occupation(str(value))
    if occupation is None:
        errors.append(
            FieldError("occupation", "occupation_unknown", RULE_MESSAGES["occupation_unknown"])
        )
    return occupation


def _check_income(errors: list[FieldError], value: object, today: date) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(
            FieldError("declared_income", "income_invalid", RULE_MESSAGES["income_invalid"])
        )
        return
    try:
        hooks.check_income(value, today)
    except RegistrationError as exc:
        errors.extend(exc.errors)


def _resolve_village(
    village: Region | str, ref: ReferenceLookup = DATABASE_LOOKUP
) -> Region | None:
    if isinstance(village, Region):
        return village if village.level == Region.Level.VILLAGE else None
    if not isinstance(village, str) or len(village) > 13:
        return None
    return ref.village(village)


def duplicate_nik_error(nik: str) -> DuplicateNik:
    """The refusal of a NIK that is already registered, naming the KPJ and the branch (callers
    show it to the client as nik_check.as_seen_by allows)."""
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
    previous_occupation = participant.occupation_id
    for field, value in changes.items():
        setattr(participant, field, value)
    with transaction.atomic():
        participant.save()
        note_occupation_change(participant, previous_occupation, today)
    return participant


def note_occupation_change(participant: Participant, previous: str, today: date) -> None:
    """Keep the months before this one on the occupation held until now (OccupationPeriod), when
    the occupation changed; a change earlier this month already did (ON CONFLICT DO NOTHING)."""
    if previous == participant.occupation_id:
        return
    OccupationPeriod.objects.bulk_create(
        [
            OccupationPeriod(
                participant=participant,
                until_month=today.replace(day=1),
                occupation_id=previous,
            )
        ],
        ignore_conflicts=True,
    )


def sector_history(participant_ids: list[int]) -> dict[int, tuple[tuple[date, str], ...]]:
    """Per participant with occupation changes: ((until_month, sector), ...) ascending - the
    sector of each earlier occupation and the first month it no longer applies."""
    out: dict[int, list[tuple[date, str]]] = {}
    rows = (
        OccupationPeriod.objects.filter(participant_id__in=participant_ids)
        .order_by("participant_id", "until_month")
        .values_list("participant_id", "until_month", "occupation__sector")
    )
    for pid, until, sector in rows:
        out.setdefault(pid, []).append((until, sector))
    return {pid: tuple(v) for pid, v in out.items()}
