"""Write paths of contributions: payments, reversals, sponsor batches, the daily status refresh.

Every entry point (pages, admin, import command, tasks, tests) calls these. Each runs in one
transaction: the ledger entry, the payment and the participant's Coverage row change together,
under a row lock on the Coverage row (SELECT ... FOR UPDATE); the UNIQUE(channel, reference)
constraint is the real guard against a payment posted twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bpjsportal.core import metrics, rowsql
from bpjsportal.core.distribution import on_cluster
from enrollment import pii, unique_keys
from enrollment.models import Participant, Partner, PayerType, StaffProfile, nik_q
from enrollment.services import sector_history
from enrollment.sharding import locked_rows

from . import coverage as rules
from . import due_dates, ledger, rules_sql, signals
from .errors import BatchError, PaymentConflict, PaymentError, ReversalError, RowError
from .ledger import facts_for
from .models import (
    RECEIVING_CHANNELS,
    ContributionCredit,
    Coverage,
    LedgerEntry,
    Payment,
    SponsorBatch,
)
from .quotes import DueNow, quote_payment
from .rates import MAX_MONTHS, QUOTE_MESSAGES, add_months
from .sponsorship import approve_for_batch, payable_by

REFERENCE_MAX = 128


# --- coverage rows ----------------------------------------------------------------------------
def _new_coverage(participant: Participant) -> Coverage:
    registered = timezone.localdate(participant.created_at)
    return Coverage(
        participant=participant,
        start_month=rules.month_start(registered),
        status=rules.status_for(
            paid_through=None, start_month=rules.month_start(registered), as_of=registered
        ),
    )


def open_coverage(participant: Participant) -> None:
    """After-registration step (inside the registration transaction): the coverage row."""
    _new_coverage(participant).save(force_insert=True)


def open_coverages(participants: list[Participant]) -> None:
    """open_coverage for many new participants: one INSERT (bulk registration)."""
    Coverage.objects.bulk_create([_new_coverage(p) for p in participants])


def lock_coverage(participant: Participant) -> Coverage:
    cov = Coverage.objects.select_for_update().filter(pk=participant.pk).first()
    if cov is None:  # a participant registered before this app kept coverage rows
        start = rules.month_start(timezone.localdate(participant.created_at))
        Coverage.objects.bulk_create(
            [Coverage(participant=participant, start_month=start)], ignore_conflicts=True
        )
        cov = Coverage.objects.select_for_update().get(pk=participant.pk)
    return cov


def _set_status(cov: Coverage, today: date) -> None:
    new = rules.status_for(paid_through=cov.paid_through, start_month=cov.start_month, as_of=today)
    if new == rules.LAPSED:
        if cov.status != rules.LAPSED or cov.lapsed_since is None:
            first = rules.next_unpaid(cov.paid_through, cov.start_month)
            cov.lapsed_since = rules.lapse_date(first)
    else:
        cov.lapsed_since = None
    cov.status = new


def _apply_payment(
    cov: Coverage, *, start: date, months: int, amount: int, today: date, payer_type: str
) -> bool:
    """Move the coverage row by one payment (its payer type becomes the participant's current
    payer); True if it reactivates after a lapse (a gap)."""
    gap = cov.paid_through is not None and start > add_months(cov.paid_through, 1)
    if cov.paid_through is None or gap:
        cov.active_since = start
        cov.continuous_months = months
    else:
        cov.continuous_months += months
    if gap:
        cov.reactivations += 1
    cov.paid_through = add_months(start, months - 1)
    cov.balance += amount
    cov.payer_type = payer_type
    _set_status(cov, today)
    return gap


COVERAGE_FIELDS = [
    "status",
    "paid_through",
    "active_since",
    "lapsed_since",
    "continuous_months",
    "reactivations",
    "balance",
    "payer_type",
    "credit",
    "updated_at",
]


# --- input checks -----------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_months(months: object) -> int:
    if not _is_int(months) or not 1 <= int(months) <= MAX_MONTHS:  # type: ignore[call-overload]
        raise PaymentError("months_out_of_range", QUOTE_MESSAGES["months_out_of_range"])
    return int(months)  # type: ignore[call-overload]


def _aware(paid_at: datetime) -> datetime:
    if not isinstance(paid_at, datetime):
        raise PaymentError("paid_at_invalid", _("Enter the date and time of the payment."))
    if paid_at.year < PAID_AT_MIN_YEAR:  # also keeps zone conversions away from year 1
        raise PaymentError("paid_at_too_old", _("The payment date is too far in the past."))
    return timezone.make_aware(paid_at) if timezone.is_naive(paid_at) else paid_at


PAID_AT_MIN_YEAR = 2000


def payment_reference(client_id: int, reference: str) -> str:
    """The payment's reference for a channel client's notification: its own reference and
    "#<client id>". Payments are unique per channel kind and reference, and two banks may well
    number their transactions alike: this keeps one bank's payment from being taken for
    another's (a conflict, or worse, a replay)."""
    return f"{reference}#{client_id}"


def check_paid_at(
    paid_at: datetime, *, registered: datetime | None = None, backdated: bool = False
) -> datetime:
    """The payment time, if it lies in the window every path accepts: not in the future, not
    older than settings.PAYMENT_MAX_AGE_DAYS (a payment is quoted at its own date, so an old date
    could buy months at an old price or cover a lapsed stretch again), and not before the day
    the participant registered. `backdated` (history loads: demo data, a migration from the old
    system) lifts only the age limit. Raises PaymentError: paid_at_invalid, paid_at_future,
    paid_at_too_old, paid_at_before_registration."""
    paid_at = _aware(paid_at)
    now = timezone.now()
    if paid_at > now:
        raise PaymentError("paid_at_future", _("The payment date is in the future."))
    day = timezone.localdate(paid_at)
    oldest = timezone.localdate(now) - timedelta(days=settings.PAYMENT_MAX_AGE_DAYS)
    if not backdated and day < oldest:
        raise PaymentError(
            "paid_at_too_old",
            _("Payments dated before %(oldest)s are not accepted; ask the back office.")
            % {"oldest": f"{oldest:%d-%m-%Y}"},
            oldest=oldest.isoformat(),
        )
    if registered is not None and day < timezone.localdate(registered):
        raise PaymentError(
            "paid_at_before_registration",
            _("The payment date is before the participant registered (%(day)s).")
            % {"day": f"{timezone.localdate(registered):%d-%m-%Y}"},
        )
    return paid_at


def find_participant(*, kpj: str | None = None, nik: str | None = None) -> Participant:
    """By KPJ number or NIK; PaymentError(participant_unknown) if neither matches."""
    qs = Participant.objects.select_related("occupation")
    found = None
    if kpj:
        found = qs.filter(kpj_number=str(kpj).strip()).first()
    elif nik:
        found = qs.filter(nik_q(str(nik).strip())).first()
    if found is None:
        raise PaymentError(
            "participant_unknown",
            _("No participant has KPJ %(kpj)s / NIK %(nik)s.")
            % {"kpj": kpj or "-", "nik": nik or "-"},
        )
    return found


def _same_payment(
    existing: Payment,
    *,
    participant: Participant,
    amount: int,
    months: int,
    payer: str,
    payer_type: str = PayerType.SELF,
) -> Payment:
    same = (
        existing.participant_id,
        existing.amount,
        existing.months,
        existing.payer,
        existing.payer_type,
    ) == (participant.pk, amount, months, payer, payer_type)
    if not same:
        raise PaymentConflict(
            "reference_conflict",
            _(
                "Reference %(ref)s of channel %(channel)s is already used by a different payment "
                "(KPJ %(kpj)s, Rp %(amount)s, %(months)s months)."
            )
            % {
                "ref": existing.reference,
                "channel": existing.channel,
                "kpj": existing.participant.kpj_number,
                "amount": f"{existing.amount:,}".replace(",", "."),
                "months": existing.months,
            },
            existing_id=existing.pk,
        )
    return existing


def _reason_for(reactivation: bool, cov: Coverage, first: date) -> str:
    if not reactivation:
        return ""
    uncovered = rules.next_unpaid(cov.paid_through, cov.start_month)
    if uncovered >= first:
        return "reactivation after lapse"
    return (
        f"reactivation after lapse; {uncovered:%Y-%m} to {add_months(first, -1):%Y-%m} "
        "not covered (no back-cover)"
    )


# --- payments ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedPayment:
    """The arguments of record_payment once checked: whole positive amount, 1..MAX_MONTHS
    months, an aware paid_at (its window is checked later, under the lock: a replay is answered
    before it), a known channel and payer, a stripped reference, the participant found."""

    participant: Participant
    amount: int
    months: int
    payer: str
    channel: str
    reference: str
    paid_at: datetime
    user: User | None
    payer_type: str
    # The agent who took the cash, when an agent did (channel "agent").
    collected_by_id: int | None = None


def _validate_payment(
    *,
    amount: int,
    months: int,
    payer: str,
    channel: str,
    reference: str,
    paid_at: datetime,
    participant: Participant | None,
    kpj: str | None,
    nik: str | None,
    collected_by: StaffProfile | None,
    user: User | None,
    payer_type: str = PayerType.SELF,
) -> CheckedPayment:
    """The checks of record_payment that need no lock, in the order the errors are answered:
    amount_invalid, amount_not_positive, months_out_of_range, paid_at_invalid, paid_at_too_old
    (before PAID_AT_MIN_YEAR), channel_invalid, payer_invalid, payer_type_invalid,
    reference_invalid, participant_unknown. Raises PaymentError; reads only (the participant
    by KPJ or NIK)."""
    if not _is_int(amount):
        raise PaymentError("amount_invalid", _("Enter the amount in whole Rupiah."))
    if amount <= 0:
        raise PaymentError("amount_not_positive", _("The amount must be more than zero."))
    months = _check_months(months)
    paid_at = _aware(paid_at)
    if channel not in RECEIVING_CHANNELS:
        raise PaymentError("channel_invalid", _("Unknown payment channel."))
    if payer not in Payment.Payer.values:
        raise PaymentError("payer_invalid", _("Unknown payer."))
    check_payer_type(payer_type)
    reference = (reference or "").strip()
    if not reference or len(reference) > REFERENCE_MAX:
        raise PaymentError("reference_invalid", _("Enter the channel's payment reference."))
    if participant is None:
        participant = find_participant(kpj=kpj, nik=nik)
    if user is None and collected_by is not None:
        user = collected_by.user
    return CheckedPayment(
        participant=participant,
        amount=amount,
        months=months,
        payer=payer,
        channel=channel,
        reference=reference,
        paid_at=paid_at,
        user=user,
        payer_type=payer_type,
        collected_by_id=collected_by.pk if collected_by is not None else None,
    )


def check_payer_type(payer_type: object) -> str:
    """A known payer type (enrollment.PayerType) or PaymentError(payer_type_invalid)."""
    if payer_type not in PayerType.values:
        raise PaymentError(
            "payer_type_invalid",
            _("Unknown payer type; use one of: %(types)s.")
            % {"types": ", ".join(PayerType.values)},
        )
    return str(payer_type)


def _replay_of(checked: CheckedPayment) -> Payment | None:
    """The payment already posted under the same (channel, reference), if the same content
    (a replay); PaymentConflict(reference_conflict) if other content; None if the reference is
    new."""
    existing = (
        Payment.objects.select_related("participant")
        .filter(channel=checked.channel, reference=checked.reference)
        .first()
    )
    if existing is None:
        return None
    return _same_payment(
        existing,
        participant=checked.participant,
        amount=checked.amount,
        months=checked.months,
        payer=checked.payer,
        payer_type=checked.payer_type,
    )


def _check_due(
    checked: CheckedPayment, cov: Coverage, *, backdated: bool
) -> tuple[datetime, DueNow]:
    """The checks that need the locked coverage row: the paid_at window (check_paid_at), then
    the amount against the quote at the payment's date (amount_mismatch, details["expected"]).
    Returns the paid_at and the quote."""
    participant = checked.participant
    # Cash the registering agent took at the registration itself, offline (the field app), is
    # older than the registration's arrival here: the age limit still applies, not this one.
    own_cash = checked.collected_by_id is not None and (
        checked.collected_by_id == participant.registered_by_id
    )
    paid_at = check_paid_at(
        checked.paid_at,
        registered=None if own_cash else participant.created_at,
        backdated=backdated,
    )
    due = quote_payment(
        participant,
        cov,
        months=checked.months,
        as_of=timezone.localdate(paid_at),
        payer_type=checked.payer_type,
    )
    if checked.amount != due.amount:
        raise PaymentError(
            "amount_mismatch",
            _("%(months)s month(s) from %(first)s cost Rp %(expected)s, not Rp %(amount)s.")
            % {
                "months": checked.months,
                "first": f"{due.first_month:%m/%Y}",
                "expected": f"{due.amount:,}".replace(",", "."),
                "amount": f"{checked.amount:,}".replace(",", "."),
            },
            expected=due.amount,
        )
    return paid_at, due


def _post_payment(
    checked: CheckedPayment,
    cov: Coverage,
    due: DueNow,
    *,
    paid_at: datetime,
    collected_by: StaffProfile | None,
    sponsor: Partner | None,
    notify: bool,
) -> tuple[Payment, bool]:
    """Write the checked payment inside record_payment's transaction, with `cov` locked: the
    payment, its ledger entry, the coverage row, and the payment_recorded signal. A concurrent
    post of the same reference that won the race is answered as a replay (False)."""
    payment = Payment(
        participant=checked.participant,
        amount=checked.amount,
        months=checked.months,
        period_start=due.first_month,
        payer=checked.payer,
        payer_type=checked.payer_type,
        channel=checked.channel,
        reference=checked.reference,
        paid_at=paid_at,
        collected_by=collected_by,
        sponsor=sponsor,
        reactivation=due.reactivation,
    )
    entry = LedgerEntry(
        participant=checked.participant,
        kind=LedgerEntry.Kind.PAYMENT,
        amount=checked.amount,
        months=checked.months,
        period_start=due.first_month,
        payment=payment,
        reason=_reason_for(due.reactivation, cov, due.first_month),
        created_by=checked.user,
    )
    try:
        # No savepoint: the reference is claimed first (enrollment/unique_keys.py, an INSERT ...
        # ON CONFLICT DO NOTHING that waits for a concurrent claim of it to commit or roll
        # back), and a reference held already raises KeyTaken before the payment's INSERT,
        # with no statement failed: the transaction goes on to read the replay.
        if due.credit or on_cluster():
            _write_payment_rows(payment, entry, cov, due, checked)
        else:
            _write_payment_chain(payment, entry, cov, due, checked)
    except unique_keys.KeyTaken:
        existing = _replay_of(checked)
        if existing is None:
            raise
        return existing, False
    metrics.payments_applied([payment])  # counted once the transaction commits
    if notify:
        signals.payment_recorded.send(sender=Payment, payment=payment)
    return payment, True


def _move_coverage(cov: Coverage, due: DueNow, checked: CheckedPayment) -> None:
    _apply_payment(
        cov,
        start=due.first_month,
        months=checked.months,
        amount=checked.amount,
        today=timezone.localdate(),
        payer_type=checked.payer_type,
    )


def _write_payment_rows(
    payment: Payment, entry: LedgerEntry, cov: Coverage, due: DueNow, checked: CheckedPayment
) -> None:
    """The payment's writes through the ORM, a statement each: the claim and the payment
    (Payment.save), the ledger entry, the credit it used, the coverage row. The path on a Citus
    cluster (which does not run a chain that writes the claims' reference table and a sharded
    table in one statement) and for a payment that uses credit on account."""
    payment.save(force_insert=True)
    entry.payment = payment
    entry.save(force_insert=True)
    _move_coverage(cov, due, checked)
    _use_credit([(cov, due, payment)])
    cov.save(update_fields=COVERAGE_FIELDS)


# The claim of the payment's (channel, reference), the payment, its ledger entry and the
# coverage row in one statement; each part after the claim runs only if the claim was won.
_PAYMENT_CHAIN = """
WITH claim AS ({claim}),
pay AS ({payment} RETURNING id),
entry AS ({entry} RETURNING id),
cov AS ({coverage} RETURNING 1)
SELECT (SELECT id FROM pay), (SELECT id FROM entry), (SELECT count(*) FROM cov)
"""


def _write_payment_chain(
    payment: Payment, entry: LedgerEntry, cov: Coverage, due: DueNow, checked: CheckedPayment
) -> None:
    """The writes of _write_payment_rows in one statement (bpjsportal/core/rowsql.py): one
    round trip where the ORM takes four. Raises KeyTaken (nothing written) when the reference
    is held already, as Payment.save() does."""
    _move_coverage(cov, due, checked)
    claim, claim_params = unique_keys.claim_sql(payment.unique_keys())
    pay, pay_params = rowsql.insert_select(payment, source="claim")
    led, led_params = rowsql.insert_select(entry, source="pay", columns={"payment_id": "pay.id"})
    upd, upd_params = rowsql.update_where(cov, COVERAGE_FIELDS, "EXISTS (SELECT 1 FROM pay)")
    sql = _PAYMENT_CHAIN.format(claim=claim, payment=pay, entry=led, coverage=upd)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*claim_params, *pay_params, *led_params, *upd_params])
        payment_id, entry_id, covered = cursor.fetchone()
    if payment_id is None:
        raise unique_keys.KeyTaken(
            {(k, v) for k, v, _p in payment.unique_keys()}, Payment.UNIQUE_KEY_CONSTRAINTS
        )
    if entry_id is None or covered != 1:  # the chain is one statement: this cannot half-happen
        raise IntegrityError(f"payment {payment_id}: ledger entry or coverage row not written")
    for row, pk in ((payment, payment_id), (entry, entry_id)):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias
    entry.payment = payment


def record_payment(
    *,
    amount: int,
    months: int,
    payer: str,
    channel: str,
    reference: str,
    paid_at: datetime,
    participant: Participant | None = None,
    kpj: str | None = None,
    nik: str | None = None,
    collected_by: StaffProfile | None = None,
    sponsor: Partner | None = None,
    user: User | None = None,
    notify: bool = True,
    backdated: bool = False,
    payer_type: str = PayerType.SELF,
) -> tuple[Payment, bool]:
    """Post one payment: (payment, True), or (the existing payment, False) for a replay of the
    same (channel, reference) with the same content. `payer_type`: whose money
    (enrollment.PayerType); it decides the price (budget-paid: no PP 50/2025 discount).
    `notify`: queue a receipt message to the participant (the `payment_recorded` signal:
    contributions/messaging/notifications.py) in the same transaction; bulk paths (file
    imports, demo data) pass False and leave it to the next day's payment_thanks reminder.
    `backdated`: a history load, see check_paid_at (never from the API or the pages).

    Raises PaymentError with code amount_not_positive, months_out_of_range, the paid_at codes
    of check_paid_at, participant_unknown, channel_invalid, payer_invalid, payer_type_invalid,
    reference_invalid, amount_mismatch (details["expected"] = the quote) or a quote code;
    PaymentConflict (reference_conflict). Nothing is written when it raises. A replay is
    answered before the date window is checked, so a re-imported old file still finds its
    payments.
    """
    checked = _validate_payment(
        amount=amount,
        months=months,
        payer=payer,
        channel=channel,
        reference=reference,
        paid_at=paid_at,
        participant=participant,
        kpj=kpj,
        nik=nik,
        collected_by=collected_by,
        user=user,
        payer_type=payer_type,
    )
    with transaction.atomic():
        cov = lock_coverage(checked.participant)
        # A replay is answered before the date window and the amount are judged: the replay
        # read runs only when those checks refuse (under the lock: a concurrent replay for
        # this participant has committed by now) or when the INSERT meets the reference
        # (_post_payment), so a new payment - the common case - costs one statement less.
        try:
            paid_at, due = _check_due(checked, cov, backdated=backdated)
        except PaymentError:
            replay = _replay_of(checked)
            if replay is not None:
                return replay, False
            raise
        return _post_payment(
            checked,
            cov,
            due,
            paid_at=paid_at,
            collected_by=collected_by,
            sponsor=sponsor,
            notify=notify,
        )


@transaction.atomic
def reverse_entry(*, entry: LedgerEntry, reason: str, user: User | None) -> LedgerEntry:
    """Cancel a payment entry with a reversal entry and recompute the coverage from the ledger.

    Raises ReversalError: reason_required, reversal_of_reversal, not_reversible (not a payment),
    already_reversed, not_latest_payment (reverse later payments first, so cover stays one run).
    """
    reason = " ".join((reason or "").split())[:255]
    if not reason:
        raise ReversalError("reason_required", _("Give the reason for the reversal."))
    participant = Participant.objects.get(pk=entry.participant_id)
    cov = lock_coverage(participant)
    entry = LedgerEntry.objects.get(pk=entry.pk)
    if entry.kind == LedgerEntry.Kind.REVERSAL:
        raise ReversalError("reversal_of_reversal", _("A reversal cannot be reversed."))
    if entry.kind != LedgerEntry.Kind.PAYMENT:
        raise ReversalError("not_reversible", _("Only payments can be reversed."))
    # (each query names the participant: on a cluster it runs on the one node holding them)
    payment_id = int(entry.payment_id or 0)  # a payment entry always has its payment
    paid_from_credit = Payment.objects.filter(
        participant_id=entry.participant_id, pk=payment_id, channel=Payment.Channel.CREDIT
    ).exists()
    if paid_from_credit:
        raise ReversalError(  # no money came in: nothing to give back
            "not_reversible", _("Months paid from credit on account cannot be reversed.")
        )
    if ContributionCredit.objects.filter(
        participant_id=entry.participant_id,
        payment_id=payment_id,
        kind=ContributionCredit.Kind.GRANT,
    ).exists():
        raise ReversalError(
            "not_reversible",
            _("Part of this payment became credit on account (PP 50/2025); it cannot be reversed."),
        )
    if LedgerEntry.objects.filter(participant_id=entry.participant_id, reverses=entry).exists():
        raise ReversalError("already_reversed", _("This payment has already been reversed."))
    latest = (
        LedgerEntry.objects.filter(
            participant_id=entry.participant_id, kind=LedgerEntry.Kind.PAYMENT
        )
        .filter(ledger.not_reversed())
        .order_by("-period_start", "-id")
        .first()
    )
    if latest is None or latest.pk != entry.pk:
        raise ReversalError(
            "not_latest_payment", _("Reverse the participant's later payments first.")
        )
    try:
        with transaction.atomic():
            reversal = LedgerEntry.objects.create(
                participant_id=entry.participant_id,
                kind=LedgerEntry.Kind.REVERSAL,
                amount=-entry.amount,
                months=entry.months,
                period_start=entry.period_start,
                payment_id=entry.payment_id,
                reverses=entry,
                reason=reason,
                created_by=user,
            )
    except IntegrityError as exc:
        raise ReversalError(
            "already_reversed", _("This payment has already been reversed.")
        ) from exc
    uses = ContributionCredit.objects.filter(
        payment=entry.payment_id, kind=ContributionCredit.Kind.USE
    ).aggregate(total=Sum("amount"))
    used = -int(uses["total"] or 0)
    if used and entry.payment_id is not None:  # the credit it used is on account again
        ContributionCredit.objects.create(
            participant_id=entry.participant_id,
            kind=ContributionCredit.Kind.RETURN,
            amount=used,
            payment_id=entry.payment_id,
            reason=f"payment reversed: {reason}"[:255],
        )
        cov.credit += used
    facts = facts_for(entry.participant_id)
    cov.paid_through = facts.paid_through
    cov.active_since = facts.active_since
    cov.continuous_months = facts.continuous_months
    cov.reactivations = facts.reactivations
    cov.balance = facts.balance
    cov.payer_type = _current_payer_type(entry.participant_id)
    _set_status(cov, timezone.localdate())
    cov.save(update_fields=COVERAGE_FIELDS)
    return reversal


def _current_payer_type(participant_id: int) -> str:
    """The payer type of the participant's latest payment not reversed (self if none)."""
    latest = (
        Payment.objects.filter(participant_id=participant_id)
        .filter(
            Exists(
                LedgerEntry.objects.filter(
                    participant_id=OuterRef("participant_id"),
                    payment=OuterRef("pk"),
                    kind=LedgerEntry.Kind.PAYMENT,
                ).filter(ledger.not_reversed())
            )
        )
        .order_by("-paid_at", "-id")
        .values_list("payer_type", flat=True)
        .first()
    )
    return latest or PayerType.SELF


def reverse_payment(*, payment: Payment, reason: str, user: User | None) -> LedgerEntry:
    """Reverse a payment (see reverse_entry for the errors)."""
    entry = LedgerEntry.objects.filter(payment=payment, kind=LedgerEntry.Kind.PAYMENT).first()
    if entry is None:
        raise ReversalError("not_reversible", _("This payment has no ledger entry."))
    return reverse_entry(entry=entry, reason=reason, user=user)


# --- sponsor batches --------------------------------------------------------------------------
def _key_kind(key: str) -> str:
    if key.isascii() and key.isdigit() and len(key) == 11:
        return "kpj"
    if key.isascii() and key.isdigit() and len(key) == 16:
        return "nik"
    return ""


def _participants_by_key(keys: list[str], within: Q | None) -> dict[str, Participant]:
    """The participants the keys (KPJ or NIK) name, among those `within` (None: everyone)."""
    out: dict[str, Participant] = {}
    kpjs = [k for k in keys if _key_kind(k) == "kpj"]
    niks = [k for k in keys if _key_kind(k) == "nik"]
    qs = Participant.objects.select_related("occupation")
    if within is not None:
        qs = qs.filter(within)
    for i in range(0, len(kpjs), 5000):
        for p in qs.filter(kpj_number__in=kpjs[i : i + 5000]):
            out[p.kpj_number] = p
    for i in range(0, len(niks), 5000):
        chunk = pii.lookup_digests_many(niks[i : i + 5000])
        for p in qs.filter(nik_digest__in=list(chunk)):
            out[chunk[bytes(p.nik_digest)]] = p
    return out


def _lock_coverages(participants: list[Participant]) -> dict[int, Coverage]:
    ids = sorted({p.pk for p in participants})
    found: dict[int, Coverage] = {}
    for i in range(0, len(ids), 5000):  # ordered by id: concurrent batches cannot deadlock
        chunk = ids[i : i + 5000]
        found.update((c.pk, c) for c in locked_rows(Coverage.objects.all(), chunk))
    missing = [p for p in participants if p.pk not in found]
    if missing:
        Coverage.objects.bulk_create(
            [
                Coverage(
                    participant=p,
                    start_month=rules.month_start(timezone.localdate(p.created_at)),
                )
                for p in missing
            ],
            ignore_conflicts=True,
        )
        found.update(
            (c.pk, c) for c in locked_rows(Coverage.objects.all(), [p.pk for p in missing])
        )
    return found


BATCH_REFERENCE_MAX = 64
# pg_advisory_xact_lock(class, key): the class number of "a sponsor batch reference being
# posted"; the key is hashtext('<sponsor id>:<reference>').
_BATCH_LOCK_CLASS = 0x5B0B


def batch_digest(
    *, reference: str, rows: Sequence[tuple[str, Any]], paid_at: datetime, total_amount: int | None
) -> str:
    """SHA-256 of the canonical batch request: the same request, however its JSON was spelled
    (key order, spaces, the paid_at's zone), gives the same digest; any other row, month, order,
    time or total gives another."""
    body = {
        "reference": reference,
        "paid_at": paid_at.astimezone(UTC).isoformat(),
        "total_amount": total_amount,
        "rows": [[str(key).strip(), months] for key, months in rows],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CheckedBatch:
    """The arguments of post_sponsor_batch once checked: a stripped reference, rows present,
    an aware paid_at (its window is checked later, under the lock: a replay is answered before
    it), and the digest of the canonical request (batch_digest)."""

    reference: str
    rows: Sequence[tuple[str, int]]
    paid_at: datetime
    total_amount: int | None
    digest: str


def _validate_batch(
    *,
    reference: str,
    rows: Sequence[tuple[str, int]],
    paid_at: datetime,
    total_amount: int | None,
) -> CheckedBatch:
    """The checks of post_sponsor_batch that need no lock, in the order the errors are answered:
    reference_invalid, empty_batch, paid_at_invalid, paid_at_too_old (before PAID_AT_MIN_YEAR).
    Raises BatchError; reads nothing. The rows themselves are checked by _plan_batch."""
    reference = (reference or "").strip()
    if not reference or len(reference) > BATCH_REFERENCE_MAX:
        raise BatchError("reference_invalid", str(_("Enter the sponsor's batch reference.")))
    if not rows:
        raise BatchError("empty_batch", str(_("The batch has no rows.")))
    try:
        paid_at = _aware(paid_at)
    except PaymentError as exc:
        raise BatchError(exc.code, str(exc.message)) from exc
    digest = batch_digest(
        reference=reference, rows=rows, paid_at=paid_at, total_amount=total_amount
    )
    return CheckedBatch(
        reference=reference,
        rows=rows,
        paid_at=paid_at,
        total_amount=total_amount,
        digest=digest,
    )


def _check_batch(
    sponsor: Partner, checked: CheckedBatch, *, within: Q | None, kind: str
) -> tuple[list[tuple[Participant, Coverage, DueNow]], int]:
    """The checks under the batch's reference lock: the paid_at window (check_paid_at), every
    row (_plan_batch: batch_invalid; it locks the rows' coverage), then total_amount against
    the sum of the quotes (amount_mismatch). Returns the planned rows and their total."""
    try:
        check_paid_at(checked.paid_at)
    except PaymentError as exc:
        raise BatchError(exc.code, str(exc.message)) from exc
    planned = _plan_batch(sponsor, checked.rows, checked.paid_at, within=within, kind=kind)
    total = sum(d.amount for _p, _c, d in planned)
    if checked.total_amount is not None and checked.total_amount != total:
        raise BatchError(
            "amount_mismatch",
            str(_("The rows cost Rp %(expected)s, not Rp %(amount)s."))
            % {
                "expected": f"{total:,}".replace(",", "."),
                "amount": f"{checked.total_amount:,}".replace(",", "."),
            },
        )
    return planned, total


def post_sponsor_batch(
    *,
    sponsor: Partner,
    reference: str,
    rows: Sequence[tuple[str, int]],
    paid_at: datetime,
    total_amount: int | None = None,
    user: User | None = None,
    admin_approval: bool = False,
    payer_type: str | None = None,
) -> tuple[SponsorBatch, bool]:
    """Post one sponsor payment split into per-participant payments, all or nothing.

    `payer_type` (enrollment.PayerType; default the sponsor's own, Partner.payer_type) is whose
    money the batch is and prices every row: a regency paying from its APBD pays the
    undiscounted rate in PP 50/2025 months (RateDiscount.excluded_payer_types).

    `rows` are (KPJ or NIK, months). Each row's amount is the participant's quote, so a sponsor
    pays exactly what is due; `total_amount`, when given, must equal the sum.

    A row names a participant the sponsor may pay for (contributions/sponsorship.py: registered
    by it, or consented to it); anyone else is `participant_unknown`, word for word the answer
    for a number that does not exist. `admin_approval` (an administrator posts the batch: the
    back office, an admin API client) lets a row name anyone and records the approval.

    The same request again (sponsor, reference and the same canonical body, `batch_digest`)
    returns the first batch (created False), also when sent at the same moment: the second
    waits for the first. The same reference with any other content is reference_conflict.
    Raises BatchError(code, rows=[RowError...]): batch_invalid (per-row codes:
    participant_unknown, months_out_of_range, duplicate_row, paid_at_before_registration, quote
    codes), amount_mismatch, reference_conflict, reference_invalid, empty_batch, and the
    paid_at codes of check_paid_at.
    """
    checked = _validate_batch(
        reference=reference, rows=rows, paid_at=paid_at, total_amount=total_amount
    )
    try:
        kind = check_payer_type(payer_type or sponsor.payer_type)
    except PaymentError as exc:
        raise BatchError(exc.code, str(exc.message)) from exc
    if kind == PayerType.SELF:  # a batch is a sponsor's, a partner's or a budget's money
        raise BatchError("payer_type_invalid", str(_("A sponsor batch cannot be self-paid.")))
    with transaction.atomic():
        _lock_batch_reference(sponsor, checked.reference)
        existing = SponsorBatch.objects.filter(sponsor=sponsor, reference=checked.reference).first()
        if existing is not None:
            replay = _replayed(
                existing,
                digest=checked.digest,
                rows=checked.rows,
                total_amount=checked.total_amount,
                # an explicit payer type must be the first one; without one, the batch is the
                # same request even if the partner's payer type was corrected since
                payer_type=kind if payer_type else existing.payer_type,
            )
            return replay, False
        planned, total = _check_batch(
            sponsor, checked, within=None if admin_approval else payable_by(sponsor), kind=kind
        )
        batch = _post_batch(
            sponsor, checked, planned, total, user=user, admin_approval=admin_approval, kind=kind
        )
    return batch, True


def _post_batch(
    sponsor: Partner,
    checked: CheckedBatch,
    planned: list[tuple[Participant, Coverage, DueNow]],
    total: int,
    *,
    user: User | None,
    admin_approval: bool,
    kind: str,
) -> SponsorBatch:
    """Write the checked batch inside post_sponsor_batch's transaction: the administrator's
    approval of its rows (admin_approval), then the batch, its payments, ledger entries and
    coverage rows (_write_batch). A payment reference already used is reference_conflict."""
    if admin_approval:
        approve_for_batch(
            participants=[p for p, _c, _d in planned],
            sponsor=sponsor,
            user=user,
            reference=checked.reference,
        )
    try:
        with transaction.atomic():
            return _write_batch(sponsor, checked, planned, total, user, kind)
    except IntegrityError as exc:
        raise BatchError(
            "reference_conflict",
            str(_("A payment reference of this batch is already used.")),
        ) from exc


def _lock_batch_reference(sponsor: Partner, reference: str) -> None:
    """Until the end of the transaction, nobody else posts this sponsor's `reference`: a retry
    sent while the first request is still running waits and then gets the first batch back."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            [_BATCH_LOCK_CLASS, f"{sponsor.pk}:{reference}"],
        )


def _replayed(
    existing: SponsorBatch,
    *,
    digest: str,
    rows: Sequence[tuple[str, int]],
    total_amount: int | None,
    payer_type: str,
) -> SponsorBatch:
    """The batch a replay gets back, or reference_conflict if the request differs (its rows or
    its payer type). Batches posted before the digest was kept are compared by row count and
    total, as they were."""
    if existing.request_digest:
        same = existing.request_digest == digest
    else:
        same = existing.row_count == len(rows) and (
            total_amount is None or existing.total_amount == total_amount
        )
    if not same or existing.payer_type != payer_type:
        raise BatchError(
            "reference_conflict",
            str(_("Batch reference %(ref)s was already posted with other content."))
            % {"ref": existing.reference},
        )
    return existing


def _plan_batch(
    sponsor: Partner,
    rows: Sequence[tuple[str, int]],
    paid_at: datetime,
    *,
    within: Q | None,
    kind: str,
) -> list[tuple[Participant, Coverage, DueNow]]:
    """Each row's participant (locked), coverage and quote; BatchError(batch_invalid) listing
    every bad row. Reads and locks only: nothing is written."""
    keys = [str(k).strip() for k, _m in rows]
    by_key = _participants_by_key(keys, within)
    errors: list[RowError] = []
    seen: dict[int, int] = {}
    resolved: list[tuple[int, str, Participant, int]] = []
    for n, (key, (_k, months)) in enumerate(zip(keys, rows, strict=True), start=1):
        p = by_key.get(key)
        if p is None:
            errors.append(RowError(n, key, "participant_unknown", str(_("Unknown KPJ or NIK."))))
            continue
        if not _is_int(months) or not 1 <= months <= MAX_MONTHS:
            errors.append(
                RowError(n, key, "months_out_of_range", str(_("Months must be 1 to 12.")))
            )
            continue
        if p.pk in seen:
            errors.append(
                RowError(
                    n,
                    key,
                    "duplicate_row",
                    str(_("Same participant as row %(row)s.")) % {"row": seen[p.pk]},
                )
            )
            continue
        seen[p.pk] = n
        resolved.append((n, key, p, months))
    covs = _lock_coverages([p for _n, _k, p, _m in resolved])
    histories = sector_history([p.pk for _n, _k, p, _m in resolved])
    as_of = timezone.localdate(paid_at)
    cache: dict[tuple[Any, ...], DueNow] = {}
    planned: list[tuple[Participant, Coverage, DueNow]] = []
    for n, key, p, months in resolved:
        try:
            check_paid_at(paid_at, registered=p.created_at, backdated=True)
        except PaymentError as exc:
            errors.append(RowError(n, key, exc.code, str(exc.message)))
            continue
        cov = covs[p.pk]
        try:
            due = _quote_cached(
                cache, p, cov, months=months, as_of=as_of, payer_type=kind,
                history=histories.get(p.pk, ()),
            )  # fmt: skip
        except PaymentError as exc:
            errors.append(RowError(n, key, exc.code, str(exc.message)))
            continue
        planned.append((p, cov, due))
    if errors:
        raise BatchError(
            "batch_invalid",
            str(_("%(n)s row(s) are wrong; nothing was posted.")) % {"n": len(errors)},
            rows=sorted(errors, key=lambda e: e.row),
        )
    return planned


def _quote_cached(
    cache: dict[tuple[Any, ...], DueNow],
    p: Participant,
    cov: Coverage,
    *,
    months: int,
    as_of: date,
    payer_type: str = PayerType.SELF,
    history: tuple[tuple[date, str], ...] = (),
) -> DueNow:
    """quote_payment, remembered for the participants of one batch who pay alike (the same
    income, programmes, sector and sector history, months, day, payer type and coverage
    months): most of a batch."""
    key = (
        *(p.declared_income, p.jht, p.occupation.sector, history, months, as_of, payer_type),
        *(cov.paid_through, cov.start_month, cov.credit),
    )
    due = cache.get(key)
    if due is None:
        due = quote_payment(
            p, cov, months=months, as_of=as_of, payer_type=payer_type, history=history
        )
        cache[key] = due
    return due


def _write_batch(
    sponsor: Partner,
    checked: CheckedBatch,
    planned: list[tuple[Participant, Coverage, DueNow]],
    total: int,
    user: User | None,
    kind: str,
) -> SponsorBatch:
    reference, paid_at = checked.reference, checked.paid_at
    batch = SponsorBatch.objects.create(
        sponsor=sponsor,
        payer_type=kind,
        reference=reference,
        request_digest=checked.digest,
        participant_months=sum(d.months for _p, _c, d in planned),
        row_count=len(planned),
        total_amount=total,
        paid_at=paid_at,
        created_by=user,
    )
    _write_payments(
        [
            (
                cov,
                d,
                Payment(
                    participant=p,
                    amount=d.amount,
                    months=d.months,
                    period_start=d.first_month,
                    payer=Payment.Payer.SPONSOR,
                    payer_type=kind,
                    channel=Payment.Channel.PARTNER,
                    reference=f"{sponsor.code}/{reference}/{p.kpj_number}",
                    paid_at=paid_at,
                    sponsor=sponsor,
                    batch=batch,
                    reactivation=d.reactivation,
                ),
            )
            for p, cov, d in planned
        ],
        user=user,
    )
    return batch


_COVERAGE_SAVE_SQL = f"""
UPDATE {Coverage._meta.db_table} AS c
   SET status = v.status, paid_through = v.paid_through, active_since = v.active_since,
       lapsed_since = v.lapsed_since, continuous_months = v.continuous_months,
       reactivations = v.reactivations, balance = v.balance, payer_type = v.payer_type,
       credit = v.credit, updated_at = %s
  FROM unnest(%s::bigint[], %s::text[], %s::date[], %s::date[], %s::date[], %s::integer[],
              %s::integer[], %s::bigint[], %s::text[], %s::bigint[])
       AS v(participant_id, status, paid_through, active_since, lapsed_since,
            continuous_months, reactivations, balance, payer_type, credit)
 WHERE c.participant_id = v.participant_id
"""  # noqa: S608 - table name from the model


def post_from_credit(
    cov: Coverage, participant: Participant, due: DueNow, *, user: User | None
) -> Payment:
    """Post `due`'s months as paid from the participant's credit on account (credits.py), with
    `cov` locked by the caller: a payment on the portal's own `credit` channel and its ledger
    entry, an adjustment of minus the same amount (no money came in: the balance stays the
    money received) and the credit's use."""
    payment = Payment.objects.create(
        participant=participant,
        amount=due.amount,
        months=due.months,
        period_start=due.first_month,
        payer=Payment.Payer.PARTICIPANT,
        payer_type=PayerType.SELF,
        channel=Payment.Channel.CREDIT,
        reference=f"CREDIT-{participant.pk}-{due.first_month:%Y%m}",
        paid_at=timezone.now(),
        reactivation=due.reactivation,
    )
    reason = _reason_for(due.reactivation, cov, due.first_month)
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(participant=participant, kind=LedgerEntry.Kind.PAYMENT, amount=due.amount,
                        months=due.months, period_start=due.first_month, payment=payment,
                        reason=reason, created_by=user),
            LedgerEntry(participant=participant, kind=LedgerEntry.Kind.ADJUSTMENT,
                        amount=-due.amount, payment=payment, created_by=user,
                        reason="paid from credit on account (PP 50/2025), no new money"),
        ]
    )  # fmt: skip
    ContributionCredit.objects.create(
        participant=participant,
        kind=ContributionCredit.Kind.USE,
        amount=-due.amount,
        payment=payment,
        reason=f"months {due.first_month:%Y-%m} paid from credit on account",
    )
    _apply_payment(
        cov,
        start=due.first_month,
        months=due.months,
        amount=due.amount,
        today=timezone.localdate(),
        payer_type=PayerType.SELF,
    )
    cov.balance -= due.amount
    cov.credit -= due.amount
    cov.save(update_fields=COVERAGE_FIELDS)
    metrics.payments_applied([payment])  # counted once the transaction commits
    return payment


def _use_credit(posted: list[tuple[Coverage, DueNow, Payment]]) -> None:
    """Record the credit on account each payment used (its DueNow.credit: quote_payment took
    it off the amount) and take it off the coverage row the caller holds locked and saves."""
    uses = []
    for cov, due, payment in posted:
        if due.credit:
            cov.credit -= due.credit
            uses.append(
                ContributionCredit(
                    participant_id=payment.participant_id,
                    kind=ContributionCredit.Kind.USE,
                    amount=-due.credit,
                    payment=payment,
                    reason=f"part of payment {payment.channel}:{payment.reference}"[:255],
                )
            )
    if uses:
        ContributionCredit.objects.bulk_create(uses)


def _write_payments(
    planned: list[tuple[Coverage, DueNow, Payment]], *, user: User | None
) -> list[Payment]:
    """Write checked payments of distinct participants whose coverage rows the caller holds
    locked, in bulk: the payments, their ledger entries, the coverage rows moved. In the
    caller's transaction; sends no receipt."""
    payments = Payment.objects.bulk_create([pay for _c, _d, pay in planned], batch_size=2000)
    metrics.payments_applied(payments)  # counted once the transaction commits
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                participant_id=pay.participant_id,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=d.amount,
                months=d.months,
                period_start=d.first_month,
                payment=pay,
                reason=_reason_for(d.reactivation, cov, d.first_month),
                created_by=user,
            )
            for (cov, d, _p), pay in zip(planned, payments, strict=True)
        ],
        batch_size=2000,
    )
    today = timezone.localdate()
    for cov, d, pay in planned:
        _apply_payment(
            cov,
            start=d.first_month,
            months=d.months,
            amount=d.amount,
            today=today,
            payer_type=pay.payer_type,
        )
    _use_credit([(cov, d, pay) for (cov, d, _p), pay in zip(planned, payments, strict=True)])
    now = timezone.now()
    columns: list[list[object]] = [[] for _ in range(10)]
    for c, _d, _p in planned:
        values = (c.pk, c.status, c.paid_through, c.active_since, c.lapsed_since)
        more = (c.continuous_months, c.reactivations, c.balance, c.payer_type, c.credit)
        for column, value in zip(columns, (*values, *more), strict=True):
            column.append(value)
    with connection.cursor() as cursor:  # one statement for the batch's coverage rows
        cursor.execute(_COVERAGE_SAVE_SQL, [now, *columns])
    return payments


@dataclass(frozen=True)
class BulkPayment:
    """One payment of `post_payments_bulk`: a participant's money a channel took for us."""

    participant: Participant
    amount: int
    months: int
    channel: str
    reference: str
    paid_at: datetime


def post_payments_bulk(items: Sequence[BulkPayment]) -> list[Payment | PaymentError]:
    """Post the payments of many participants at once (one each), in the caller's transaction,
    by the rules of record_payment: the participants' coverage rows are locked (in id order),
    a (channel, reference) already posted answers with its payment (a replay, if the content is
    the same; else reference_conflict), the paid_at window is checked, and the amount must be
    the quote at the payment's date. Returns per item its payment or the PaymentError (nothing
    written for that item). The payments, ledger entries and coverage rows are written in bulk;
    no receipt is sent (the caller queues its own)."""
    if len({i.participant.pk for i in items}) != len(items):
        raise ValueError("post_payments_bulk takes one payment per participant")
    covs = _lock_coverages([i.participant for i in items])
    histories = sector_history([i.participant.pk for i in items])
    existing = {
        (p.channel, p.reference): p
        for p in Payment.objects.filter(reference__in=[i.reference for i in items])
    }
    out: list[Payment | PaymentError | None] = []
    planned: list[tuple[Coverage, DueNow, Payment]] = []
    slots: list[int] = []
    cache: dict[tuple[Any, ...], DueNow] = {}
    for item in items:
        p, cov = item.participant, covs[item.participant.pk]
        seen = existing.get((item.channel, item.reference))
        if seen is not None:
            same = (seen.participant_id, seen.amount, seen.months) == (
                p.pk,
                item.amount,
                item.months,
            )
            out.append(
                seen
                if same
                else PaymentConflict(
                    "reference_conflict",
                    _("Reference %(ref)s is already used by a different payment.")
                    % {"ref": item.reference},
                )
            )
            continue
        try:
            paid_at = check_paid_at(item.paid_at, registered=p.created_at)
            as_of = timezone.localdate(paid_at)
            due = _quote_cached(
                cache, p, cov, months=item.months, as_of=as_of, history=histories.get(p.pk, ())
            )
            if due.amount != item.amount:
                raise PaymentError(
                    "amount_mismatch",
                    _("The amount does not match the quote."),
                    expected=due.amount,
                )
        except PaymentError as exc:
            out.append(exc)
            continue
        slots.append(len(out))
        out.append(None)  # the payment, once written below
        planned.append(
            (
                cov,
                due,
                Payment(
                    participant=p,
                    amount=item.amount,
                    months=item.months,
                    period_start=due.first_month,
                    payer=Payment.Payer.PARTICIPANT,
                    channel=item.channel,
                    reference=item.reference,
                    paid_at=paid_at,
                    reactivation=due.reactivation,
                ),
            )
        )
    for slot, payment in zip(slots, _write_payments(planned, user=None), strict=True):
        out[slot] = payment
    return [o if o is not None else PaymentError("not_written", "") for o in out]


# --- the daily status refresh -------------------------------------------------------------------
# The status rule in its SQL form (rules_sql, proven equal to coverage.status_for): lapsed when
# the next unpaid month is at or below lapse_threshold(as_of), not active when it is at or below
# the current month; lapsed_since = coverage.lapse_date(next unpaid month).
_NEXT_UNPAID = rules_sql.next_unpaid("paid_through", "start_month")
_LAPSE_DATE = rules_sql.lapse_date(_NEXT_UNPAID, "%(grace)s", "%(due_dates)s", "%(due_day)s")
REFRESH_LAPSED_SQL = f"""
UPDATE {rules_sql.T.coverage}
SET status = 'lapsed',
    lapsed_since = {_LAPSE_DATE},
    updated_at = now()
WHERE status <> 'lapsed' AND {rules_sql.is_lapsed("paid_through", "start_month", "%(threshold)s")}
"""  # noqa: S608
REFRESH_GRACE_SQL = f"""
UPDATE {rules_sql.T.coverage}
SET status = 'grace', lapsed_since = NULL, updated_at = now()
WHERE status = 'active' AND {rules_sql.is_behind("paid_through", "start_month", "%(month)s")}
"""  # noqa: S608


def refresh_coverage_statuses(*, as_of: date | None = None) -> dict[str, int]:
    """Move statuses as dates pass (active -> grace -> lapsed) with two set-based UPDATEs; no
    per-row Python. Payments move them the other way in their own transactions. Idempotent."""
    as_of = as_of or timezone.localdate()
    params: dict[str, date | int | list[date]] = {
        "threshold": rules.lapse_threshold(as_of),
        "month": rules.month_start(as_of),
        "grace": rules.grace_months(),
        "due_dates": due_dates.due_dates_param(as_of),
        "due_day": rules.due_day(),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(REFRESH_LAPSED_SQL, params)
        lapsed = cursor.rowcount
        cursor.execute(REFRESH_GRACE_SQL, params)
        grace = cursor.rowcount
    return {"to_lapsed": lapsed, "to_grace": grace}
