"""Which API client may post which payment: the scope policy of the payments API.

An API client's scope (enrollment/api/scopes.py) decides for whom it pays and as what:

- channel: posts as its own payment channel (`ApiClient.payment_channel`); the payer is the
  participant unless it says otherwise;
- partner: posts through the partner channel, as the sponsor unless it says otherwise, with
  itself as the sponsor; a sponsor batch is always its own;
- agent: posts cash collected by its agent (channel and payer "agent");
- admin: sends channel and payer itself; its sponsor batches name the sponsor and approve their
  rows (contributions/sponsorship.py).

The participant is found by the exact KPJ or NIK among those the client may pay for (action
"record_payment"); anyone else is a 404, never a 403, and a channel's miss counts against its
daily look-up limit (enrollment/api/lookups.py). Errors are the API's own (ApiError), so the
views answer them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from bpjsportal.core.api.errors import ApiError, FieldError
from enrollment import permissions
from enrollment.api.lookups import count_lookup
from enrollment.api.scopes import participant_by_key_for
from enrollment.models import ApiClient, Participant, Partner, PayerType, StaffProfile

from ..models import Payment


@dataclass(frozen=True)
class PaymentAccess:
    """What a client's payment is posted as: the arguments of record_payment that its scope
    decides (the participant, channel, payer, sponsor and collecting agent)."""

    participant: Participant
    channel: str
    payer: str
    sponsor: Partner | None = None
    collected_by: StaffProfile | None = None
    payer_type: str = PayerType.SELF


@dataclass(frozen=True)
class BatchAccess:
    """For whom a client's sponsor batch is posted, and whether it is an administrator's
    (admin_approval of post_sponsor_batch)."""

    sponsor: Partner
    admin_approval: bool


def participant_by_key(client: ApiClient, kpj: str, nik: str, *, action: str) -> Participant:
    """The participant with this exact KPJ or NIK, if `action` on it is in the client's scope:
    ApiError participant_required (neither sent, 400), participant_unknown (404)."""
    if not (kpj or nik):
        raise ApiError(
            "participant_required",
            _("Send the participant's kpj_number or nik."),
            errors=[FieldError("kpj_number", "required", _("This field is required."))],
        )
    found = (
        participant_by_key_for(client, kpj=kpj, nik=nik, action=action)
        .select_related("occupation")
        .first()
    )
    if found is None:
        raise ApiError(
            "participant_unknown",
            _("No participant with this KPJ/NIK is visible to this client."),
            status_code=status.HTTP_404_NOT_FOUND,
        )
    return found


def payment_access_for(
    client: ApiClient,
    *,
    kpj: str,
    nik: str,
    channel: str | None,
    payer: str | None,
    payer_type: str | None = None,
) -> PaymentAccess:
    """What `client` may post a payment as, given the participant key and the channel and payer
    it sent (None: not sent). Checked in this order, each an ApiError:
    `<field>_not_allowed` (400: a channel, partner or agent client sent a channel or payer other
    than its own; a payer_type other than its own, which sets the price: a partner's is its
    Partner.payer_type, a channel's and an agent's the participant's own), validation_error
    (400: channel or payer missing, with field errors),
    participant_required (400), participant_unknown (404, counted as a channel's look-up)."""
    sent = {"channel": channel, "payer": payer, "payer_type": payer_type}
    sponsor: Partner | None = None
    collected_by: StaffProfile | None = None
    fixed: dict[str, str] = {}
    if client.scope == ApiClient.Scope.CHANNEL:
        fixed = {"channel": client.payment_channel, "payer_type": PayerType.SELF}
        payer = payer or Payment.Payer.PARTICIPANT
    elif client.scope == ApiClient.Scope.PARTNER:
        payer, sponsor = payer or Payment.Payer.SPONSOR, client.partner
        fixed = {
            "channel": Payment.Channel.PARTNER,
            "payer_type": sponsor.payer_type if sponsor else PayerType.SPONSOR,
        }
    elif client.scope == ApiClient.Scope.AGENT:
        fixed = {
            "channel": Payment.Channel.AGENT,
            "payer": Payment.Payer.AGENT,
            "payer_type": PayerType.SELF,
        }
        collected_by = client.agent
    for field, value in fixed.items():
        if sent[field] is not None and sent[field] != value:
            raise ApiError(
                f"{field}_not_allowed",
                _("This client posts payments as %(field)s %(value)s only.")
                % {"field": field, "value": value},
            )
    channel = fixed.get("channel", channel)
    payer = fixed.get("payer", payer)
    payer_type = fixed.get("payer_type", payer_type or PayerType.SELF)
    if channel is None or payer is None:
        raise ApiError(
            "validation_error",
            _("Some fields are not valid; see errors."),
            errors=[
                FieldError(f, "required", _("This field is required."))
                for f, v in (("channel", channel), ("payer", payer))
                if v is None
            ],
        )
    try:
        participant = participant_by_key(client, kpj, nik, action="record_payment")
    except ApiError as exc:
        # A payment naming a number nobody holds answers what a look-up answers: a channel's
        # miss counts against its daily look-up limit (enrollment/api/lookups.py).
        if exc.code == "participant_unknown":
            count_lookup(client)
        raise
    return PaymentAccess(
        participant=participant,
        channel=channel,
        payer=payer,
        sponsor=sponsor,
        collected_by=collected_by,
        payer_type=payer_type,
    )


def batch_access_for(client: ApiClient, *, sponsor_code: str | None) -> BatchAccess:
    """For whom `client` may post a sponsor batch (`sponsor_code`: the partner code it sent, or
    None). A partner posts its own batches only (sponsor_not_allowed, 400), an administrator
    names the sponsor (sponsor_unknown, 400) and approves the batch's rows; any other client
    is permission_denied (403)."""
    sponsor: Partner | None
    batch_scope = permissions.scope_of(client, "post_sponsor_batch")
    if batch_scope == permissions.Scope.PARTNER:
        if sponsor_code not in (None, client.partner.code if client.partner else None):
            raise ApiError("sponsor_not_allowed", _("A partner posts its own batches only."))
        sponsor = client.partner
    elif batch_scope == permissions.Scope.NATIONAL:
        sponsor = Partner.objects.filter(code=sponsor_code or "").first()
        if sponsor is None:
            raise ApiError(
                "sponsor_unknown",
                _("Send the sponsor's partner code."),
                errors=[FieldError("sponsor", "sponsor_unknown", _("Unknown partner."))],
            )
    else:
        raise ApiError(
            "permission_denied",
            _("Only partner and admin clients post sponsor batches."),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    assert sponsor is not None
    # an administrator's batch approves its rows; a partner pays only for the participants it
    # registered or who consented (contributions/sponsorship.py)
    return BatchAccess(sponsor=sponsor, admin_approval=batch_scope == permissions.Scope.NATIONAL)
