"""Bills: payment codes a worker pays at a bank, shop or e-wallet, and what the payment
channels report about them (the biller protocol: inquiry, then a signed payment notification;
docs/api.md "Bills").

- A code is 16 digits: "8", a keyed permutation of a sequence value (bpjsportal.core.fpe with
  settings.BILL_CODE_KEY, two 7-digit halves) and a Luhn digit. It fits a bank virtual account
  and a cashier's keypad, is never reused (a sequence value is drawn once) and says nothing
  about any other code without the key.
- `open_bill` prices the months with the one quote service (contributions/quotes.py: arrears
  first, discounts) and keeps one open code per participant and number of months: asking again
  while it is open returns it.
- `notify_payment` applies a channel's payment through `record_payment` (ledger, coverage,
  receipt) when the bill is open and the amount is the bill's; otherwise the money goes to the
  suspense account (SuspenseItem, append-only), so none is ever dropped. Each notification is
  kept with a digest of its body: the same reference again is answered the same way, a
  different body is a conflict, and concurrent identical notifications make one payment (the
  bill's row lock orders them).
- `void_notification` is a channel's same-day void (the local day, Asia/Jakarta, on which the
  notification arrived): an applied payment is reversed through the ledger and the bill opens
  again (the payer may pay again at the same till); a suspense item is settled as voided.
  After that day the void is refused (reversal_too_late): the back office reverses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bpjsportal.core import fpe, metrics, rowsql
from bpjsportal.core.distribution import on_cluster
from enrollment import unique_keys
from enrollment.models import ApiClient, Participant

from .errors import ContributionError, PaymentConflict, PaymentError
from .models import (
    Bill,
    BillNotification,
    BillReversal,
    Coverage,
    Payment,
    SuspenseItem,
    SuspenseResolution,
)
from .quotes import quote_payment
from .rates import MAX_MONTHS, QUOTE_MESSAGES
from .services import payment_reference, record_payment, reverse_payment
from .suspense import resolve

BILL_SEQUENCE = "contributions_bill_seq"
CODE_PREFIX = "8"  # KPJ numbers have 11 digits, NIKs 16 without this lead: no mix-up at a till
_HALF = 10**7  # two 7-digit halves: 14 digits between the prefix and the Luhn digit
# record_payment's refusals that are the channel's mistake (fix and send again): 400, nothing
# kept. Any other refusal of an open bill's payment (the quote moved since the code was issued)
# puts the money in suspense.
CHANNEL_MISTAKES = {"paid_at_future", "paid_at_too_old", "paid_at_before_registration"}


# Where a code is paid (docs/api.md "Bills"): the channel kinds that pay by inquiry and
# notification, with the steps a worker follows. Shown with the code on every surface.
WHERE_TO_PAY = (
    (
        Payment.Channel.BANK,
        _("Bank: ATM, mobile or internet banking, Pay, Virtual account, then enter the code."),
    ),
    (
        Payment.Channel.RETAIL,
        _("Shop (minimarket, post office): say 'BPJS Ketenagakerjaan', give the cashier the code."),
    ),
    (
        Payment.Channel.EWALLET,
        _("E-wallet app: Bills, BPJS Ketenagakerjaan, then enter the code."),
    ),
)


def where_to_pay() -> list[dict[str, str]]:
    return [{"channel": str(channel), "how": str(how)} for channel, how in WHERE_TO_PAY]


class BillError(ContributionError):
    """A bill request or notification refused; nothing was written."""


def _key() -> bytes:
    key = str(getattr(settings, "BILL_CODE_KEY", "") or "")
    if len(key) < 32:
        raise ValueError("BILL_CODE_KEY must be a secret of at least 32 characters")
    return key.encode("utf-8")


def code_for(sequence_value: int, key: bytes | None = None) -> str:
    body = CODE_PREFIX + f"{fpe.permute(sequence_value, key=key or _key(), half=_HALF):014d}"
    return body + fpe.luhn_check_digit(body)


def is_valid_code(code: str) -> bool:
    return len(code) == 16 and code.startswith(CODE_PREFIX) and fpe.luhn_valid(code)


def state_of(bill: Bill, now: datetime | None = None) -> str:
    """open / paid / expired as of `now` (an open bill past its expiry is expired)."""
    if bill.status == Bill.Status.OPEN and bill.expires_at <= (now or timezone.now()):
        return Bill.Status.EXPIRED
    return bill.status


def open_bill(
    *, participant: Participant, months: int, user: User | None = None
) -> tuple[Bill, bool]:
    """The open code for `months` months of `participant`'s contributions: the one already open
    (False) or a new one priced now (True). Raises BillError months_out_of_range, or the
    quote's code (PaymentError) when the months cannot be priced."""
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise BillError("months_out_of_range", QUOTE_MESSAGES["months_out_of_range"])
    now = timezone.now()
    current = Bill.objects.filter(
        participant=participant, months=months, status=Bill.Status.OPEN
    ).first()
    if current is not None and current.expires_at > now:
        return current, False
    if current is not None:  # past its expiry: it frees the slot of an open code
        Bill.objects.filter(pk=current.pk, status=Bill.Status.OPEN).update(
            status=Bill.Status.EXPIRED
        )
    cov = Coverage.objects.filter(pk=participant.pk).first()
    due = quote_payment(participant, cov, months=months, as_of=timezone.localdate(now))
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [BILL_SEQUENCE])
        row = cursor.fetchone()
    assert row is not None
    try:
        with transaction.atomic():
            bill = Bill.objects.create(
                participant=participant,
                code=code_for(int(row[0])),
                months=months,
                period_start=due.first_month,
                amount=due.amount,
                expires_at=now + timedelta(hours=settings.BILL_EXPIRY_HOURS),
                created_by=user,
            )
    except IntegrityError:  # a concurrent request opened it first: that code is the answer
        bill = Bill.objects.get(participant=participant, months=months, status=Bill.Status.OPEN)
        return bill, False
    return bill, True


def find_bill(code: str) -> Bill | None:
    if not is_valid_code(code):
        return None
    return Bill.objects.select_related("participant").filter(code=code).first()


@dataclass(frozen=True)
class Notified:
    """The answer to a payment notification (the same for a replay)."""

    notification: BillNotification
    replay: bool

    @property
    def applied(self) -> bool:
        return self.notification.outcome == BillNotification.Outcome.APPLIED


def notify_payment(
    *,
    client: ApiClient,
    code: str,
    reference: str,
    amount: int,
    paid_at: datetime,
    body_sha256: str,
    source: str = BillNotification.Source.API,
) -> Notified:
    """Record a channel's payment for the bill `code`: applied as a payment when the bill is
    open and `amount` is its amount, else held in suspense (reason amount_mismatch, bill_expired
    or bill_paid). The same (client, reference) again: the first answer (replay), or BillError
    reference_conflict (409) when the body differs. BillError bill_unknown (404); PaymentError
    for a paid_at outside the window (400): nothing is written."""
    with transaction.atomic():
        bill = _locked_bill(code)
        if bill is None:
            raise BillError("bill_unknown", _("No bill has this code."))
        notification = BillNotification(
            participant=bill.participant,
            bill=bill,
            client=client,
            reference=reference,
            body_sha256=body_sha256,
            source=source,
        )
        # The reference is claimed first (enrollment/unique_keys.py): a new one - the common
        # case - needs no look for an earlier notification; one seen before (or being handled
        # by a concurrent request: the claim waits for it to end) is answered from it.
        if unique_keys.claim(notification.unique_keys()):
            return _notified_before(client, reference, bill, amount, body_sha256)
        notification.keys_claimed = True
        reason = _suspense_reason(bill, amount)
        payment = None
        if reason is None:
            payment = _apply(bill, client=client, reference=reference, paid_at=paid_at)
            if payment is None:  # the quote moved since the code was issued
                reason = SuspenseItem.Reason.AMOUNT_MISMATCH
        suspense = None
        if reason is not None:
            suspense = SuspenseItem.objects.create(
                participant=bill.participant,
                bill=bill,
                client=client,
                channel=client.payment_channel,
                reference=reference,
                amount=amount,
                paid_at=paid_at,
                reason=reason,
            )
            metrics.suspense_held(suspense)  # counted once the transaction commits
        notification.outcome = (
            BillNotification.Outcome.APPLIED if payment else BillNotification.Outcome.SUSPENSE
        )
        notification.payment = payment
        notification.suspense = suspense
        _record(notification, bill)
    return Notified(notification, replay=False)


# A paid bill's new state and its notification in one statement (bpjsportal/core/rowsql.py).
_PAID_AND_NOTIFIED = """
WITH paid AS ({paid} RETURNING 1), notified AS ({notified} RETURNING id)
SELECT (SELECT count(*) FROM paid), (SELECT id FROM notified)
"""


def _record(notification: BillNotification, bill: Bill) -> None:
    """Write the notification and, when its payment was applied, mark the bill paid by it. On
    one server a single statement; on a cluster (no chain over two sharded tables) two."""
    payment = notification.payment
    if payment is not None:
        bill.status, bill.payment = Bill.Status.PAID, payment
    if payment is None or on_cluster():
        if payment is not None:
            Bill.objects.filter(participant_id=bill.participant_id, pk=bill.pk).update(
                status=bill.status, payment=payment
            )
        notification.save(force_insert=True)
        return
    paid, paid_params = rowsql.update_where(
        bill, ["status", "payment"], f"participant_id = {int(bill.participant_id)}"
    )
    notified, notified_params = rowsql.insert_select(notification)
    with connection.cursor() as cursor:
        cursor.execute(
            _PAID_AND_NOTIFIED.format(paid=paid, notified=notified),
            [*paid_params, *notified_params],
        )
        updated, notification.pk = cursor.fetchone()
    if updated != 1:  # one statement: the notification is not kept either
        raise IntegrityError(f"bill {bill.pk}: not marked paid")
    notification._state.adding = False
    notification._state.db = connection.alias


def _locked_bill(code: str) -> Bill | None:
    """The bill of `code`, locked, with its participant and occupation (the quote's). On a
    cluster whose code it is first (the claim of enrollment/unique_keys.py), then the bill by
    participant and code: a lock there names the shard it takes and locks no joined row, so
    the participant is read on its own."""
    if not is_valid_code(code):
        return None
    if on_cluster():
        owner = unique_keys.holders([("bill_code", code)]).get(("bill_code", code))
        if owner is None:
            return None
        return Bill.objects.filter(participant_id=owner, code=code).select_for_update().first()
    related = ("participant", "participant__occupation")
    bills = Bill.objects.filter(code=code)  # on one server the code's own unique index
    return bills.select_related(*related).select_for_update(of=("self",)).first()


def _notified_before(
    client: ApiClient, reference: str, bill: Bill, amount: int, body_sha256: str
) -> Notified:
    """The answer to a reference this client has notified before: the first answer (a replay),
    or BillError reference_conflict when the body differs."""
    seen = BillNotification.objects.filter(client=client, reference=reference).first()
    if seen is not None and _settled_before(seen, bill, amount):
        return Notified(seen, replay=True)  # the file came first: the same payment
    if seen is None or seen.body_sha256 != body_sha256 or seen.bill_id != bill.pk:
        raise BillError(
            "reference_conflict",
            _("This reference was already used for a different notification."),
        )
    return Notified(seen, replay=True)


def notified_amount(n: BillNotification) -> int:
    """The amount a notification reported (its payment's, or its suspense item's)."""
    held = n.payment if n.payment_id is not None else n.suspense
    assert held is not None
    return int(held.amount)


def _settled_before(seen: BillNotification, bill: Bill, amount: int) -> bool:
    return (
        seen.source == BillNotification.Source.SETTLEMENT
        and seen.bill_id == bill.pk
        and notified_amount(seen) == amount
    )


def _suspense_reason(bill: Bill, amount: int) -> str | None:
    state = state_of(bill)
    if state == Bill.Status.PAID:
        return SuspenseItem.Reason.BILL_PAID
    if state == Bill.Status.EXPIRED:
        return SuspenseItem.Reason.BILL_EXPIRED
    if amount != bill.amount:
        return SuspenseItem.Reason.AMOUNT_MISMATCH
    return None


def _apply(bill: Bill, *, client: ApiClient, reference: str, paid_at: datetime) -> Payment | None:
    """The bill's payment through record_payment (None: the quote no longer matches the bill,
    the money goes to suspense). Raises the channel's own mistakes (paid_at) and conflicts."""
    try:
        # record_payment's own transaction block is a savepoint here, and it writes nothing
        # before it refuses: a refused payment leaves the bill as it was
        payment, _created = record_payment(
            participant=bill.participant,
            amount=bill.amount,
            months=bill.months,
            payer=Payment.Payer.PARTICIPANT,
            channel=client.payment_channel,
            reference=payment_reference(client.pk, reference),
            paid_at=paid_at,
        )
    except PaymentConflict:
        raise
    except PaymentError as exc:
        if exc.code in CHANNEL_MISTAKES:
            raise
        return None
    Bill.objects.filter(pk=bill.pk).update(status=Bill.Status.PAID, payment=payment)
    return payment


def void_notification(
    *, client: ApiClient, code: str, reference: str, reason: str
) -> tuple[BillReversal, bool]:
    """The channel's same-day void of its notification `reference` for the bill `code`:
    (reversal, True), or the earlier one (False) when it comes again. Raises BillError
    notification_unknown (404), reversal_too_late; ReversalError (not_latest_payment: a later
    payment must be reversed first) or SuspenseError (suspense_resolved: the back office
    settled it already). Nothing is written when it raises."""
    reason = " ".join((reason or "").split())[:200] or "voided by the channel"
    seen = (
        BillNotification.objects.select_related("bill")
        .filter(client=client, reference=reference, bill__code=code)
        .first()
    )
    if seen is None:
        raise BillError(
            "notification_unknown", _("This channel sent no notification with this reference.")
        )
    with transaction.atomic():
        bill = Bill.objects.select_for_update().get(  # notify_payment's order
            participant_id=seen.participant_id, pk=seen.bill_id
        )
        done = BillReversal.objects.filter(notification=seen).first()
        if done is not None:
            return done, False
        if timezone.localdate(seen.created_at) != timezone.localdate():
            raise BillError(
                "reversal_too_late",
                _("A payment can be voided only on the day it was notified; ask the back office."),
            )
        why = f"{client.name}: {reason}"
        if seen.outcome == BillNotification.Outcome.APPLIED:
            assert seen.payment is not None
            entry = reverse_payment(payment=seen.payment, reason=why, user=None)
            _reopen(bill, seen.payment)
            return BillReversal.objects.create(
                participant_id=seen.participant_id, notification=seen, entry=entry, reason=why
            ), True
        assert seen.suspense is not None
        resolution = resolve(
            item=seen.suspense, action=SuspenseResolution.Action.VOID, reason=why, client=client
        )
        return BillReversal.objects.create(
            participant_id=seen.participant_id,
            notification=seen,
            resolution=resolution,
            reason=why,
        ), True


def _reopen(bill: Bill, payment: Payment) -> None:
    """The bill whose payment was voided is open again until its expiry (the payer may pay
    again), unless a newer code for the same months is open by now: then it is expired."""
    if bill.payment_id != payment.pk:
        return
    still_open = bill.expires_at > timezone.now()
    try:
        with transaction.atomic():  # savepoint: the one-open-code constraint decides
            Bill.objects.filter(pk=bill.pk).update(
                status=Bill.Status.OPEN if still_open else Bill.Status.EXPIRED, payment=None
            )
    except IntegrityError:
        Bill.objects.filter(pk=bill.pk).update(status=Bill.Status.EXPIRED, payment=None)
