"""Suspense: money that could not be applied on its own, held so that none is ever dropped -
a channel's payment for a bill (contributions/bills.py), or an agent's field cash that the
participant's state refused when the offline field app synced it (`record_field_cash`) - and
how the back office settles each item, once:

- **apply**: a payment for the participant through `record_payment` (ledger, coverage, receipt),
  for the number of months the amount pays exactly, priced at the date the money was paid;
- **refund**: marked for refund to the payer (the channel returns it; nothing is posted);
- **void**: the channel voided its own notification the same day (bills.void_notification).

Every resolution is a new row (SuspenseResolution, append-only) with who and why, audited by
the audit app's triggers; the suspense item itself never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bpjsportal.core import metrics
from enrollment.models import ApiClient, Participant, StaffProfile

from .errors import ContributionError, PaymentConflict, PaymentError
from .models import Coverage, Payment, SuspenseItem, SuspenseResolution
from .quotes import quote_payment
from .rates import MAX_MONTHS
from .services import lock_coverage, payment_reference, record_payment

REASON_MAX = 255

# record_payment's refusals that come from the participant's state, not from the request: what
# an agent's offline cash may meet when the phone syncs it. The participant paid meanwhile
# through another channel or used credit on account (the first month, hence the price, moved:
# amount_mismatch), a rate schedule of the new first month no longer has their income level
# (income_not_level) or their programmes (programmes_invalid), or the cash is dated before the
# participant's registration (paid_at_before_registration: a phone's clock that was wrong; the
# registering agent's own cash taken offline at the registration is not refused so - see
# services._check_due). Everything else is the request's own mistake and is refused as
# always: amount_not_positive, months_out_of_range, the paid_at window (paid_at_future,
# paid_at_too_old: an offline phone older than the window goes to the back office by hand),
# reference_invalid, participant_unknown, reference_conflict.
FIELD_CONFLICTS = frozenset(
    {"amount_mismatch", "income_not_level", "programmes_invalid", "paid_at_before_registration"}
)


class SuspenseError(ContributionError):
    """A resolution refused; nothing was written."""


def open_items() -> QuerySet[SuspenseItem]:
    """The suspense items no one has settled yet, oldest first (the back office's work list)."""
    # (each join between participant-keyed tables names the participant, or is a second
    # query: on a cluster a join on another column would not stay on one node)
    settled = SuspenseResolution.objects.filter(
        participant_id=OuterRef("participant_id"), suspense=OuterRef("pk")
    )
    return (
        SuspenseItem.objects.filter(~Exists(settled))
        .select_related("participant", "client")
        .prefetch_related("bill")
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
    locked = SuspenseItem.objects.select_for_update().get(
        participant_id=item.participant_id, pk=item.pk
    )
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


@dataclass(frozen=True)
class FieldCash:
    """What became of an agent's field cash: a payment (`created` False: a replay of the same
    receipt), or an item held in suspense (`created` False: the receipt was held already)."""

    payment: Payment | None = None
    item: SuspenseItem | None = None
    created: bool = False


def record_field_cash(
    *,
    client: ApiClient,
    participant: Participant,
    amount: int,
    months: int,
    channel: str,
    payer: str,
    reference: str,
    paid_at: datetime,
    collected_by: StaffProfile | None,
    hold: bool,
) -> FieldCash:
    """An agent's cash for `participant` (a receipt of the offline field app: `reference`):
    posted through record_payment as always; with `hold`, a refusal of FIELD_CONFLICTS (the
    participant's state, not the request) holds the cash in suspense instead (reason
    field_conflict, no bill), in the same transaction, so collected cash is never dropped.

    Exactly once per receipt: the participant's coverage row is locked first (record_payment's
    lock), so repeats of a receipt run one after the other; a receipt already posted is
    record_payment's replay (or reference_conflict), one already held answers its item again
    (with or without `hold`: the receipt is taken), or PaymentConflict reference_conflict when
    the cash differs (participant, amount, months, paid_at, client). Raises record_payment's
    PaymentError otherwise; nothing is written when it raises."""
    reference = (reference or "").strip()
    with transaction.atomic():
        lock_coverage(participant)
        if not Payment.objects.filter(channel=channel, reference=reference).exists():
            held = _held(channel, reference)
            if held is not None:
                return FieldCash(
                    item=_same_cash(held, participant, amount, months, paid_at, client)
                )
        try:
            payment, created = record_payment(
                participant=participant,
                amount=amount,
                months=months,
                payer=payer,
                channel=channel,
                reference=reference,
                paid_at=paid_at,
                collected_by=collected_by,
            )
        except PaymentConflict:
            raise
        except PaymentError as exc:
            if not hold or exc.code not in FIELD_CONFLICTS:
                raise
            return _hold(
                exc,
                client=client,
                participant=participant,
                amount=amount,
                months=months,
                channel=channel,
                reference=reference,
                paid_at=paid_at,
            )
        return FieldCash(payment=payment, created=created)


def _held(channel: str, reference: str) -> SuspenseItem | None:
    return (
        SuspenseItem.objects.select_related("participant")
        .filter(channel=channel, reference=reference, bill__isnull=True)
        .order_by("id")
        .first()
    )


def _same_cash(
    held: SuspenseItem,
    participant: Participant,
    amount: int,
    months: int,
    paid_at: datetime,
    client: ApiClient,
) -> SuspenseItem:
    """The held item, if it is the same cash again; else PaymentConflict reference_conflict."""
    same = (held.participant_id, held.amount, held.months, held.paid_at, held.client_id) == (
        participant.pk,
        amount,
        months,
        paid_at,
        client.pk,
    )
    if not same:
        raise PaymentConflict(
            "reference_conflict",
            _(
                "Reference %(ref)s of channel %(channel)s is already held in suspense for "
                "different cash (Rp %(amount)s, %(months)s months, collected %(paid_at)s)."
            )
            % {
                "ref": held.reference,
                "channel": held.channel,
                "amount": f"{held.amount:,}".replace(",", "."),
                "months": held.months,
                "paid_at": f"{timezone.localtime(held.paid_at):%d-%m-%Y %H:%M}",
            },
            existing_suspense_id=held.pk,
        )
    return held


def _hold(
    refusal: PaymentError,
    *,
    client: ApiClient,
    participant: Participant,
    amount: int,
    months: int,
    channel: str,
    reference: str,
    paid_at: datetime,
) -> FieldCash:
    """The refused field cash, held in suspense with its refusal (answered again, word for
    word, to a repeat of the receipt)."""
    try:
        with transaction.atomic():  # savepoint: the partial unique constraint is the guard
            item = SuspenseItem.objects.create(
                participant=participant,
                bill=None,
                client=client,
                channel=channel,
                reference=reference,
                amount=amount,
                months=months,
                paid_at=paid_at,
                reason=SuspenseItem.Reason.FIELD_CONFLICT,
                refusal_code=refusal.code,
                refusal_message=str(refusal.message),
                expected=refusal.expected,
            )
    except IntegrityError:
        held = _held(channel, reference)
        if held is None:
            raise
        return FieldCash(item=_same_cash(held, participant, amount, months, paid_at, client))
    metrics.suspense_held(item)  # counted once the transaction commits
    return FieldCash(item=item, created=True)


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
    # Field cash (no bill) stays the agent's collection; a bill's money is the participant's.
    field_cash = item.bill_id is None and item.channel == Payment.Channel.AGENT
    payment, created = record_payment(
        participant=item.participant,
        amount=item.amount,
        months=months,
        payer=Payment.Payer.AGENT if field_cash else Payment.Payer.PARTICIPANT,
        channel=item.channel,
        # "#<client id>": never the receipt's own reference, so a repeat of the receipt still
        # finds its suspense item, not this payment
        reference=payment_reference(item.client_id, item.reference),
        paid_at=item.paid_at,
        collected_by=item.client.agent if field_cash else None,
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
