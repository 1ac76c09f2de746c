"""API clients: creation (the token is returned once, only its hash is kept), lookup, revocation.

Token format `bpu_<prefix>_<secret>`: the prefix (8 hex characters) finds the row; the SHA-256 of
the whole token is compared in constant time. The secret has 256 bits, so a fast hash is enough
(no password stretching is needed for a random secret)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bpjsportal.core.api.errors import FieldError

from ..errors import RegistrationError
from ..models import ApiClient, Partner, StaffProfile

TOKEN_PREFIX = "bpu_"  # noqa: S105 - a public marker, not a secret
# last_used_at is written at most this often per client (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
PAYMENT_CHANNELS = ("bank", "retail", "ewallet", "agent", "partner")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    token: str


def _new_token() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def check_api_client(
    *,
    name: str,
    scope: str,
    partner: Partner | None,
    agent: StaffProfile | None,
    payment_channel: str,
) -> list[FieldError]:
    """Every broken rule of a new client (the admin form and the service share it)."""
    errors: list[FieldError] = []
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        errors.append(FieldError("name", "name_required", _("Enter a name (max 120).")))
    if scope not in ApiClient.Scope.values:
        errors.append(FieldError("scope", "scope_invalid", _("Unknown scope.")))
    if scope == ApiClient.Scope.PARTNER and partner is None:
        errors.append(FieldError("partner", "partner_required", _("A partner client needs one.")))
    if scope == ApiClient.Scope.AGENT and (agent is None or agent.role != StaffProfile.Role.AGENT):
        errors.append(FieldError("agent", "agent_required", _("An agent client needs an agent.")))
    if scope == ApiClient.Scope.CHANNEL and payment_channel not in PAYMENT_CHANNELS:
        errors.append(
            FieldError(
                "payment_channel",
                "payment_channel_required",
                _("A channel client needs its payment channel."),
            )
        )
    return errors


def create_api_client(
    *,
    name: str,
    scope: str,
    partner: Partner | None = None,
    agent: StaffProfile | None = None,
    payment_channel: str = "",
) -> IssuedClient:
    """Create a client and its token (returned here only). Raises RegistrationError."""
    name = " ".join((name or "").split())
    errors = check_api_client(
        name=name, scope=scope, partner=partner, agent=agent, payment_channel=payment_channel
    )
    if errors:
        raise RegistrationError(errors)
    for _attempt in range(5):
        prefix, token = _new_token()
        try:
            with transaction.atomic():
                client = ApiClient.objects.create(
                    name=name,
                    scope=scope,
                    partner=partner if scope == ApiClient.Scope.PARTNER else None,
                    agent=agent if scope == ApiClient.Scope.AGENT else None,
                    payment_channel=payment_channel if scope == ApiClient.Scope.CHANNEL else "",
                    token_prefix=prefix,
                    token_hash=hash_token(token),
                )
        except IntegrityError:  # a prefix collision (1 in 4 billion): draw again
            continue
        return IssuedClient(client=client, token=token)
    raise RuntimeError("could not draw a unique token prefix")


def rotate_token(client: ApiClient) -> str:
    """Give `client` a new token (returned here only); the old one stops at once. The client
    row - its scope, its Idempotency-Keys, its history - stays."""
    for _attempt in range(5):
        prefix, token = _new_token()
        try:
            with transaction.atomic():
                ApiClient.objects.filter(pk=client.pk).update(
                    token_prefix=prefix, token_hash=hash_token(token)
                )
        except IntegrityError:  # a prefix collision: draw again
            continue
        client.token_prefix, client.token_hash = prefix, hash_token(token)
        return token
    raise RuntimeError("could not draw a unique token prefix")


def authenticate_token(token: str) -> ApiClient | None:
    """The active client holding `token`, or None. A client bound to a staff member (agent
    scope) stops - and is revoked for good - once that person is no longer an active agent,
    even if the change bypassed the signals below (e.g. a QuerySet.update)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
    client = (
        ApiClient.objects.select_related("partner", "agent__user", "agent__branch")
        .filter(token_prefix=prefix)
        .first()
    )
    if client is None or not hmac.compare_digest(client.token_hash, hash_token(token)):
        return None
    if not client.active or client.revoked_at is not None:
        return None
    if client.agent is not None:
        reason = _staff_change(client.agent)
        if reason:
            revoke_api_client(client, reason=reason)
            return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


def _staff_change(agent: StaffProfile) -> str:
    """Why an agent-bound token may no longer act ("" if it may)."""
    if not agent.user.is_active:
        return REVOKED_STAFF_DEACTIVATED
    if agent.role != StaffProfile.Role.AGENT:
        return REVOKED_ROLE_CHANGED
    return ""


# revoke_reason values (ApiClient.revoke_reason)
REVOKED_BY_ADMIN = "revoked"
REVOKED_STAFF_DEACTIVATED = "staff_deactivated"
REVOKED_ROLE_CHANGED = "staff_role_changed"
REVOKED_PASSWORD_CHANGED = "staff_password_changed"  # noqa: S105 - a reason code


def revoke_api_client(client: ApiClient, *, reason: str = REVOKED_BY_ADMIN) -> None:
    """The token stops working at once; the row stays for the audit trail."""
    ApiClient.objects.filter(pk=client.pk).update(
        active=False, revoked_at=timezone.now(), revoke_reason=reason
    )
    client.active = False
    client.revoke_reason = reason


def revoke_staff_clients(*, profile_id: int, reason: str) -> int:
    """Revoke every active token acting for the staff member `profile_id`; how many."""
    return ApiClient.objects.filter(agent_id=profile_id, active=True).update(
        active=False, revoked_at=timezone.now(), revoke_reason=reason
    )


# --- a staff member's change stops the tokens bound to them (signals, enrollment/apps.py) ------
# Before the save the old row is read (only when a field that matters may change); after it the
# tokens are revoked, in the same transaction as the change when there is one.
_PENDING = "_bpu_revoke_api_clients"


def user_changing(sender: type[User], instance: User, update_fields: Any = None, **_: Any) -> None:
    if instance.pk is None or (
        update_fields is not None and not {"is_active", "password"} & set(update_fields)
    ):
        return
    old = sender.objects.filter(pk=instance.pk).values("is_active", "password").first()
    if old is None:
        return
    if old["is_active"] and not instance.is_active:
        instance.__dict__[_PENDING] = REVOKED_STAFF_DEACTIVATED
    elif old["password"] != instance.password:
        instance.__dict__[_PENDING] = REVOKED_PASSWORD_CHANGED


def user_changed(sender: type[User], instance: User, **_: Any) -> None:
    reason = instance.__dict__.pop(_PENDING, "")
    if reason:
        for profile_id in StaffProfile.objects.filter(user=instance).values_list("pk", flat=True):
            revoke_staff_clients(profile_id=profile_id, reason=reason)


def staff_changing(
    sender: type[StaffProfile], instance: StaffProfile, update_fields: Any = None, **_: Any
) -> None:
    if instance.pk is None or (update_fields is not None and "role" not in update_fields):
        return
    old_role = sender.objects.filter(pk=instance.pk).values_list("role", flat=True).first()
    if old_role == StaffProfile.Role.AGENT and instance.role != StaffProfile.Role.AGENT:
        instance.__dict__[_PENDING] = REVOKED_ROLE_CHANGED


def staff_changed(sender: type[StaffProfile], instance: StaffProfile, **_: Any) -> None:
    reason = instance.__dict__.pop(_PENDING, "")
    if reason:
        revoke_staff_clients(profile_id=instance.pk, reason=reason)
