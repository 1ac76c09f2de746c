"""Suspense: money a channel reported for a bill that could not be applied on its own
(contributions/bills.py), and how the back office settles each item, once:

- **apply**: a payment for the participant through `record_payment` (ledger, coverage, receipt),
  for the number of months the amount pays exactly, priced at the date the money was paid;
- **refund**: marked for refund to the payer (the channel returns it; nothing is posted);
- **void**: the channel voided its own notification the same day (bills.void_notification).

Every resolution is a new row (SuspenseResolution, append-only) with who and why, audited by
the audit app's triggers; the suspense item itself never changes.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enrollment.models import ApiClient

from .errors import ContributionError, PaymentError
from .models import Coverage, Payment, SuspenseItem, SuspenseResolution
from .quotes import quote_payment
from .rates import MAX_MONTHS
from .services import payment_reference, record_payment

REASON_MAX = 255


class SuspenseError(ContributionError):
    """A resolution refused; nothing was written."""


def open_items() -> QuerySet[SuspenseItem]:
    """The suspense items no one has settled yet, oldest first (the back office's work list)."""
    return (
        SuspenseItem.objects.filter(resolution__isnull=True)
        .select_related("participant", "bill", "client")
        .order_by("created_at", "id")
    )


def months_paid_by(item: SuspenseItem) -> int | None:
    """The number of months (1-12) whose quote at the payment's date is exactly the item's
    amount, or None (then it can only be refunded)."""
    participant = item.participant
    cov = Coverage.objects.filter(pk=participant.pk).first()
    day = timezone.localdate(item.paid_at)
    for months in range(1, MAX_MONTHS + 1):
        try:
            due = quote_payment(participant, cov, months=months, as_of=day)
        except PaymentError:
            return None
        if due.amount == item.amount:
            return months
        if due.amount > item.amount:  # quotes grow with the months
            return None
    return None


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise SuspenseError("reason_required", _("Give the reason for this decision."))
    if len(reason) > REASON_MAX:
        raise SuspenseError(
            "reason_too_long", _("Keep the reason under %(max)s characters.") % {"max": REASON_MAX}
        )
    return reason


def _locked(item: SuspenseItem) -> SuspenseItem:
    """The item locked for this transaction (a FOR UPDATE lock fires no UPDATE trigger), if
    no one resolved it already."""
    locked = SuspenseItem.objects.select_for_update().select_related("participant").get(pk=item.pk)
    if SuspenseResolution.objects.filter(suspense=locked).exists():
        raise SuspenseError("suspense_resolved", _("This suspense item is already settled."))
    return locked


def resolve(
    *,
    item: SuspenseItem,
    action: str,
    reason: str,
    user: User | None = None,
    client: ApiClient | None = None,
) -> SuspenseResolution:
    """Settle `item` once: action apply, refund or void (see the module). Raises SuspenseError:
    action_invalid, reason_required, reason_too_long, suspense_resolved,
    amount_not_whole_months (apply: the amount pays no whole number of months; refund it); or
    the PaymentError of record_payment (e.g. reference_conflict). Nothing is written when it
    raises."""
    if action not in SuspenseResolution.Action.values:
        raise SuspenseError("action_invalid", _("Choose apply, refund or void."))
    reason = _reason(reason)
    with transaction.atomic():
        item = _locked(item)
        payment = None
        if action == SuspenseResolution.Action.APPLY:
            payment = _apply(item, user=user)
        return SuspenseResolution.objects.create(
            participant=item.participant,
            suspense=item,
            action=action,
            reason=reason,
            payment=payment,
            resolved_by=user,
            client=client,
        )


def _apply(item: SuspenseItem, *, user: User | None) -> Payment:
    months = months_paid_by(item)
    if months is None:
        raise SuspenseError(
            "amount_not_whole_months",
            _(
                "Rp %(amount)s does not pay a whole number of months for this participant at "
                "%(day)s; mark it for refund."
            )
            % {
                "amount": f"{item.amount:,}".replace(",", "."),
                "day": f"{timezone.localdate(item.paid_at):%d-%m-%Y}",
            },
        )
    payment, created = record_payment(
        participant=item.participant,
        amount=item.amount,
        months=months,
        payer=Payment.Payer.PARTICIPANT,
        channel=item.channel,
        reference=payment_reference(item.client_id, item.reference),
        paid_at=item.paid_at,
        user=user,
        # The money arrived at paid_at (the channel's record, append-only): it is priced and
        # dated there even when the back office settles it after the usual age limit.
        backdated=True,
    )
    if not created:  # the channel's reference already names a posted payment: not this money
        raise SuspenseError(
            "reference_conflict",
            _("A payment with this channel reference is already posted; mark this for refund."),
        )
    return payment
