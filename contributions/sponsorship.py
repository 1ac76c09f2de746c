"""Who a partner may pay for: the participants it registered, and those who gave their consent to
be sponsored by it (confirmed in person by field staff) or whom an administrator approved.

Paying never widens what a partner may read or change: the consent only lets the partner's
payments and sponsor batches find the participant (enrollment/permissions.py asks
`partner_scope` for those two actions only). A participant outside this set is answered exactly
like a KPJ or NIK that does not exist, so a partner cannot learn who is registered.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enrollment.models import Participant, Partner

from .errors import ConsentError
from .models import SponsorConsent

# The actions a consent opens to the partner (rows of enrollment.permissions.TABLE).
PAYING_ACTIONS = frozenset({"look_up_dues", "record_payment", "post_sponsor_batch"})
NOTE_MAX = 255


def consented_to(sponsor: Partner) -> Q:
    """Participants with a standing consent for `sponsor` (a probe of the consent index)."""
    return Q(
        pk__in=SponsorConsent.objects.filter(sponsor=sponsor, withdrawn_at__isnull=True).values(
            "participant_id"
        )
    )


def payable_by(sponsor: Partner) -> Q:
    """Participants `sponsor` may pay for: registered by it, or consented to it."""
    return Q(partner=sponsor) | consented_to(sponsor)


def partner_scope(partner: Partner, action: str) -> Q | None:
    """The roles table's hook (enrollment.permissions.register_partner_filter)."""
    return consented_to(partner) if action in PAYING_ACTIONS else None


def _clean_note(note: str) -> str:
    return " ".join((note or "").split())[:NOTE_MAX]


@transaction.atomic
def grant_sponsor_consent(
    *,
    participant: Participant,
    sponsor: Partner,
    method: str,
    user: User | None,
    note: str = "",
) -> tuple[SponsorConsent, bool]:
    """Record that `sponsor` may pay for `participant`: (consent, True) when recorded now,
    (the standing consent, False) when one already stands. A withdrawn consent is granted anew
    (the audit trail keeps every grant and withdrawal). Raises ConsentError: method_invalid,
    sponsor_inactive, sponsor_is_registrar (the partner registered the participant: no consent
    is needed), note_required (an in-person confirmation names how it was confirmed)."""
    if method not in SponsorConsent.Method.values:
        raise ConsentError("method_invalid", _("Unknown kind of consent."))
    if not sponsor.active:
        raise ConsentError("sponsor_inactive", _("This partner is not active."))
    if participant.partner_id == sponsor.pk:
        raise ConsentError(
            "sponsor_is_registrar",
            _("This partner registered the participant and may already pay for them."),
        )
    note = _clean_note(note)
    if method == SponsorConsent.Method.IN_PERSON and not note:
        raise ConsentError(
            "note_required",
            _("Write how the participant gave consent (e.g. met at the market, ID checked)."),
        )
    now = timezone.now()
    consent, created = SponsorConsent.objects.select_for_update().get_or_create(
        participant=participant,
        sponsor=sponsor,
        defaults={"method": method, "note": note, "granted_by": user, "granted_at": now},
    )
    if created:
        return consent, True
    if consent.withdrawn_at is None:
        return consent, False
    consent.method, consent.note, consent.granted_by, consent.granted_at = method, note, user, now
    consent.withdrawn_at = consent.withdrawn_by = None
    consent.save()
    return consent, True


@transaction.atomic
def withdraw_sponsor_consent(
    *, participant: Participant, sponsor: Partner, user: User | None
) -> bool:
    """The partner may no longer pay for the participant (payments already made stay). True if
    a standing consent was withdrawn."""
    consent = (
        SponsorConsent.objects.select_for_update()
        .filter(participant=participant, sponsor=sponsor, withdrawn_at__isnull=True)
        .first()
    )
    if consent is None:
        return False
    consent.withdrawn_at, consent.withdrawn_by = timezone.now(), user
    consent.save(update_fields=["withdrawn_at", "withdrawn_by"])
    return True


def approve_for_batch(
    *, participants: list[Participant], sponsor: Partner, user: User | None, reference: str
) -> int:
    """An administrator's sponsor batch is the administrator's approval: record it for every
    row the sponsor had no leave to pay for, in set-based statements inside the batch's
    transaction (a 10,000-row batch is three statements, not 10,000 grants). How many."""
    ids = [p.pk for p in participants if p.partner_id != sponsor.pk]
    if not ids:
        return 0
    rows = SponsorConsent.objects.filter(sponsor=sponsor, participant_id__in=ids)
    standing = set(rows.filter(withdrawn_at__isnull=True).values_list("participant_id", flat=True))
    withdrawn = set(
        rows.filter(withdrawn_at__isnull=False).values_list("participant_id", flat=True)
    )
    note = _clean_note(
        str(_("Sponsor batch %(ref)s posted by an administrator")) % {"ref": reference}
    )
    now = timezone.now()
    method = SponsorConsent.Method.ADMIN
    if withdrawn:
        rows.filter(participant_id__in=withdrawn).update(
            method=method,
            note=note,
            granted_by=user,
            granted_at=now,
            withdrawn_at=None,
            withdrawn_by=None,
        )
    new = [pk for pk in ids if pk not in standing and pk not in withdrawn]
    SponsorConsent.objects.bulk_create(
        [
            SponsorConsent(
                participant_id=pk,
                sponsor=sponsor,
                method=method,
                note=note,
                granted_by=user,
                granted_at=now,
            )
            for pk in new
        ],
        batch_size=2000,
    )
    return len(withdrawn) + len(new)
