"""A phone's enrolment in the field app: its own agent-scope API token and receipt prefix.

The phone enrols at each online login (the portal's login, with its lockout and second factor
where the role has one): the first time a FieldDevice and its ApiClient are made; later the
same device gets a fresh token (the old one stops) and keeps its prefix, so the Idempotency-Keys
its queue already used still replay. The queue key (the AES-GCM key the phone encrypts its
queue with, held there as a non-extractable WebCrypto key) is derived from a random secret the
server keeps for the agent: a login gives it back, a logout forgets it on the phone, and
another agent logging in on the same phone gets another key.

A device whose token an administrator revoked (a lost phone) is not enrolled again on the
strength of a session that was open before the revocation: the agent logs in again (password,
and second factor where the role has one) - `DeviceRevoked`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from enrollment.api.clients import create_api_client, rotate_token
from enrollment.models import ApiClient, FieldDevice, StaffProfile

# Receipt prefixes: "F" and four characters of an alphabet without look-alikes (0/O, 1/I/L).
PREFIX_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LABEL_MAX = 120
NOT_DRAWN = ""  # StaffProfile.field_queue_secret before the agent's first enrolment


@dataclass(frozen=True)
class Enrolment:
    device: FieldDevice
    token: str
    queue_key: str  # base64url, 32 bytes


def queue_key(staff: StaffProfile) -> str:
    """The agent's queue key: from the agent's own random secret (StaffProfile.
    field_queue_secret, drawn once), not from SECRET_KEY (rotating that must not make what
    phones hold unreadable) nor from the device (a new enrolment must still read the old
    queue)."""
    if not staff.field_queue_secret:
        secret = secrets.token_hex(32)
        # Only where none was drawn yet: two first enrolments at once keep one secret.
        StaffProfile.objects.filter(pk=staff.pk, field_queue_secret=NOT_DRAWN).update(
            field_queue_secret=secret
        )
        staff.refresh_from_db(fields=["field_queue_secret"])
    raw = hmac.new(
        staff.field_queue_secret.encode(), f"field-queue:{staff.user_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _new_prefix() -> str:
    return "F" + "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(4))


def _parse_id(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


class DeviceRevoked(Exception):
    """The phone's token was revoked after this login: log in again."""


@transaction.atomic
def enrol(staff: StaffProfile, *, device_id: object, label: str) -> Enrolment:
    """Enrol (or re-enrol) this agent's device; a device id of another agent or an unknown one
    starts a new device, and so does one whose token an administrator revoked - once the agent
    has logged in after the revocation (else DeviceRevoked)."""
    label = " ".join(str(label or "").split())[:LABEL_MAX]
    known = _parse_id(device_id)
    device = (
        FieldDevice.objects.select_for_update()
        .select_related("client")
        .filter(public_id=known, agent=staff)
        .first()
        if known
        else None
    )
    now = timezone.now()
    revoked_at = device.client.revoked_at if device is not None else None
    if (
        device is not None
        and device.client.revoke_reason not in ("", "staff_password_changed")
        and revoked_at is not None
        and (staff.user.last_login is None or staff.user.last_login < revoked_at)
    ):
        raise DeviceRevoked
    if device is not None and device.client.revoke_reason in ("", "staff_password_changed"):
        token = rotate_token(device.client)
        ApiClient.objects.filter(pk=device.client_id).update(
            active=True, revoked_at=None, revoke_reason=""
        )
        FieldDevice.objects.filter(pk=device.pk).update(enrolled_at=now, label=label)
        return Enrolment(device, token, queue_key(staff))
    issued = create_api_client(
        name=f"Field app {staff.agent_code or staff.user.username}",
        scope=ApiClient.Scope.AGENT,
        agent=staff,
    )
    for _attempt in range(10):
        try:
            with transaction.atomic():
                device = FieldDevice.objects.create(
                    public_id=uuid.uuid4(),
                    agent=staff,
                    client=issued.client,
                    receipt_prefix=_new_prefix(),
                    label=label,
                    enrolled_at=now,
                )
        except IntegrityError:  # a prefix drawn twice (1 in 14 million per device): again
            continue
        return Enrolment(device, issued.token, queue_key(staff))
    raise RuntimeError("could not draw a unique receipt prefix")
