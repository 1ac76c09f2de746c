"""Bulk upsert of participants by NIK, and the Idempotency-Key store it replays from.

New NIKs go through register_participants_bulk (the rules of register_participant, applied to
the whole batch with set-based reads and writes); a NIK that exists, or a repeat of a NIK earlier
in the request, then runs the single-row services (update_participant, or register_participant
when the earlier row failed) in its own savepoint — the outcome of every row is what processing
the rows one by one, in order, would give. A bad row leaves no trace and the good rows stand.
The whole request, rows and idempotency record, is one transaction: a crash writes nothing, and
a replay finds either nothing or the finished record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import ValidationError

from bpjsportal.core.api.errors import ApiError, FieldError, flatten

from ..errors import RegistrationError
from ..models import ApiClient, IdempotencyRecord, Participant, Partner, mask_nik, niks_q
from ..nik_check import as_seen_by
from ..services import (
    duplicate_nik_error,
    normalize_phone,
    register_participant,
    register_participants_bulk,
    update_participant,
)
from ..sharding import locked_rows
from .scopes import participants_for, sees_full_nik
from .serializers import ParticipantInput

BULK_MAX_ROWS = 1000
KEY_MAX = 128


def request_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_idempotency_key(key: str | None) -> str:
    if not key:
        raise ApiError(
            "idempotency_key_required",
            _("Send an Idempotency-Key header (a unique value per request)."),
        )
    if len(key) > KEY_MAX or not key.isascii() or not key.isprintable():
        raise ApiError(
            "idempotency_key_invalid",
            _("The Idempotency-Key must be at most 128 printable ASCII characters."),
        )
    return key


# pg_advisory_xact_lock's first key for Idempotency-Key claims (the second: the client and key)
IDEMPOTENCY_LOCK = 0x1DE7  # (the sponsor batches: contributions.services, 0x5B0B)


@dataclass
class Replay:
    status_code: int
    body: dict[str, Any]


def claim_key(
    client: ApiClient, key: str, endpoint: str, digest: str
) -> IdempotencyRecord | Replay:
    """Inside the request's transaction: claim the key, or return the stored outcome.

    A concurrent request with the same key waits until the first commits, then replays it. It
    waits on a lock of its own, taken first: on a Citus cluster (the records are a reference
    table) waiting on the unique index instead deadlocked - the waiter holds Citus's lock on the
    table's shard, which the first needs to store its answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            [IDEMPOTENCY_LOCK, f"{client.pk}:{key}"],
        )
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                client=client, key=key, endpoint=endpoint, request_hash=digest
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(client=client, key=key)
    if record.request_hash != digest or record.endpoint != endpoint:
        raise ApiError(
            "idempotency_key_reused",
            _("This Idempotency-Key was used for a different request."),
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Replay(record.status_code, record.response)


def _errors(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"field": e.field, "code": e.code, "message": str(e.message)} for e in errors]


def _row_result(
    n: int, nik: str, result: str, client: ApiClient, p: Participant | None = None, errors: Any = ()
) -> dict[str, Any]:
    shown = nik if sees_full_nik(client) or not isinstance(nik, str) else mask_nik(nik)
    return {
        "row": n,
        "nik": shown if isinstance(shown, str) else "",
        "result": result,
        "id": p.pk if p else None,
        "kpj_number": p.kpj_number if p else None,
        "errors": list(errors),
    }


def registration_kwargs(
    client: ApiClient, data: dict[str, Any], partners: dict[str, Partner | None] | None = None
) -> dict[str, Any]:
    """Validated registration input → register_participant's arguments for this client.
    `partners` caches partner look-ups across the rows of one request."""
    data = dict(data)
    programmes = data.pop("programmes", ["JKK", "JKM"])
    data["jht"] = "JHT" in programmes
    channel = data.pop("channel", None)
    partner_code = data.pop("partner", None)
    errors: list[FieldError] = []
    if client.scope != ApiClient.Scope.ADMIN and (channel is not None or partner_code):
        field = "channel" if channel is not None else "partner"
        errors.append(
            FieldError(field, "field_not_allowed", _("Only admin clients may set this field."))
        )
    partner: Partner | None = None
    if client.scope == ApiClient.Scope.PARTNER:
        channel, partner = Participant.Channel.PARTNER, client.partner
    elif client.scope == ApiClient.Scope.AGENT:
        channel = Participant.Channel.AGENT
        data["registered_by"] = client.agent
    else:
        if partner_code:
            if partners is None or partner_code not in partners:
                found = Partner.objects.filter(code=partner_code).first()
                if partners is not None:
                    partners[partner_code] = found
            partner = partners[partner_code] if partners is not None else found
            if partner is None:
                errors.append(FieldError("partner", "partner_unknown", _("Unknown partner.")))
        channel = channel or (Participant.Channel.PARTNER if partner else Participant.Channel.SELF)
    if errors:
        raise RegistrationError(errors)
    data.update(channel=channel, partner=partner)
    return data


def _changes(p: Participant, data: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """What an upsert row would change on an existing participant, or why it may not."""
    errors: list[FieldError] = []
    for field in ("birth_date", "sex"):
        if getattr(p, field) != data[field]:
            errors.append(
                FieldError(field, "field_not_changeable", _("This field cannot be changed."))
            )
    if " ".join(data["full_name"].split()) != p.full_name:
        errors.append(
            FieldError("full_name", "field_not_changeable", _("This field cannot be changed."))
        )
    changes: dict[str, Any] = {}
    try:
        phone = normalize_phone(data["phone"])
    except ValueError:
        phone = data["phone"]
    wanted = {
        "phone": phone,
        "email": (data.get("email") or "").strip(),
        "village": data["village"],
        "address": " ".join(data["address"].split()),
        "occupation": data["occupation"],
        "declared_income": data["declared_income"],
        "jht": data["jht"],
        "consent_reminders": data["consent_reminders"],
        "language": data["language"],
    }
    current = {
        "phone": p.phone,
        "email": p.email,
        "village": p.village_id,
        "address": p.address,
        "occupation": p.occupation_id,
        "declared_income": p.declared_income,
        "jht": p.jht,
        "consent_reminders": p.consent_reminders,
        "language": p.language,
    }
    for field, value in wanted.items():
        if current[field] != value:
            changes[field] = value
    return changes, errors


def _parse_row(
    client: ApiClient,
    n: int,
    raw: Any,
    partners: dict[str, Partner | None] | None = None,
    serializer: ParticipantInput | None = None,
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(the NIK as sent, register_participant's arguments, None) or (nik, None, error result).

    `serializer`: one ParticipantInput reused for every row of a request (building its fields
    is most of a serializer's cost); it validates exactly as `ParticipantInput(data=raw)`."""
    nik = raw.get("nik", "") if isinstance(raw, dict) else ""
    nik = nik if isinstance(nik, str) else ""
    if not isinstance(raw, dict):
        err = FieldError("", "row_not_object", _("Each row must be a JSON object."))
        return nik, None, _row_result(n, nik, "error", client, errors=_errors([err]))
    try:
        data = dict((serializer or ParticipantInput()).run_validation(raw))
    except ValidationError as exc:
        errors = _errors(flatten(exc.detail))
        return nik, None, _row_result(n, nik, "error", client, errors=errors)
    try:
        return nik, registration_kwargs(client, data, partners), None
    except RegistrationError as exc:
        return nik, None, _row_result(n, nik, "error", client, errors=_errors(exc.errors))


def upsert_row(
    client: ApiClient, n: int, raw: Any, existing_by_nik: dict[str, Participant]
) -> dict[str, Any]:
    """One row: register a new NIK, update a NIK in the client's scope. The services are atomic
    (a savepoint here), so a refused row leaves nothing behind."""
    nik, kwargs, failed = _parse_row(client, n, raw)
    if failed is not None:
        return failed
    assert kwargs is not None
    try:
        existing = existing_by_nik.get(kwargs["nik"])
        if existing is None:
            p = register_participant(**kwargs)
            existing_by_nik[p.nik] = p
            return _row_result(n, nik, "created", client, p)
        return _update_row(client, n, nik, existing, kwargs)
    except RegistrationError as exc:
        return _row_result(n, nik, "error", client, errors=_errors(as_seen_by(client, exc)))


def _update_row(
    client: ApiClient, n: int, nik: str, existing: Participant, kwargs: dict[str, Any]
) -> dict[str, Any]:
    if not participants_for(client, "edit_participant").filter(pk=existing.pk).exists():
        err = FieldError("nik", "duplicate_nik", _("This NIK is already registered."))
        return _row_result(n, nik, "error", client, errors=_errors([err]))
    changes, errors = _changes(existing, kwargs)
    if errors:
        raise RegistrationError(errors)
    if not changes:
        return _row_result(n, nik, "unchanged", client, existing)
    p = update_participant(participant=existing, **changes)
    return _row_result(n, nik, "updated", client, p)


def bulk_upsert(client: ApiClient, rows: list[Any], *, create_only: bool = False) -> dict[str, Any]:
    """Every row's outcome (see the module's docstring). `create_only`: a NIK that exists - or
    repeats an earlier row of the request - is refused duplicate_nik instead of updated (as a
    single registration is: enrollment.services.duplicate_nik_error)."""
    niks = [r["nik"] for r in rows if isinstance(r, dict) and isinstance(r.get("nik"), str)]
    # One locked read for the NIKs that exist (ordered: concurrent requests cannot deadlock).
    # (found first, then locked by id: on a cluster a lock statement stays within one shard)
    found = list(Participant.objects.filter(niks_q(niks)).values_list("id", flat=True))
    existing = {p.nik: p for p in locked_rows(Participant.objects.all(), found, field="id")}
    results: list[dict[str, Any] | None] = [None] * len(rows)
    new: list[tuple[int, str, dict[str, Any]]] = []  # rows registering a NIK new to the request
    later: list[int] = []  # existing NIKs and repeats: one by one, after the new ones
    seen: set[str] = set()
    partners: dict[str, Partner | None] = {}
    serializer = ParticipantInput()
    for n, raw in enumerate(rows):
        nik, kwargs, failed = _parse_row(client, n, raw, partners, serializer)
        if failed is not None:
            results[n] = failed
        elif kwargs is not None and (kwargs["nik"] in existing or kwargs["nik"] in seen):
            later.append(n)
        elif kwargs is not None:
            seen.add(kwargs["nik"])
            new.append((n, nik, kwargs))
    outcomes = register_participants_bulk([kwargs for _, _, kwargs in new])
    for (n, nik, _kwargs), outcome in zip(new, outcomes, strict=True):
        if isinstance(outcome, Participant):
            existing[outcome.nik] = outcome
            results[n] = _row_result(n, nik, "created", client, outcome)
        else:
            results[n] = _row_result(
                n, nik, "error", client, errors=_errors(as_seen_by(client, outcome))
            )
    # A row's outcome depends only on the rows before it with the same NIK, which are all done.
    for n in later:
        if create_only:
            nik = rows[n]["nik"]
            refused = as_seen_by(client, duplicate_nik_error(nik))
            results[n] = _row_result(n, nik, "error", client, errors=_errors(refused))
            continue
        results[n] = upsert_row(client, n, rows[n], existing)
    summary = dict.fromkeys(("created", "updated", "unchanged", "error"), 0)
    for r in results:
        assert r is not None
        summary[r["result"]] += 1
    return {"results": results, "summary": summary}
