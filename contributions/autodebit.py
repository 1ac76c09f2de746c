"""Autodebit: a participant's standing order with a payment channel, charged before each due
date so that paying needs nobody to remember (docs/api.md "Autodebit").

- **Mandates** (AutodebitMandate): set up by the participant on their page (logged in with a
  one-time code) or by an agent who typed the code the participant received; at most one active
  per participant; cancelled from the page, by an agent or admin, or by the channel's signed
  callback. Cancelling stops every charge not yet made.
- **Planning** (`plan`, a Celery beat task twice a day): from settings.AUTODEBIT_DAYS_BEFORE
  days before a month's due date (coverage.due_date: day 15, PP 44/2015, or the next working
  day after a holiday) until that date, every active mandate whose participant has not paid
  the month gets one AutodebitCharge row for (mandate, month) - INSERT ... ON CONFLICT DO
  NOTHING, so a duplicated beat, a rerun or a second planner adds nothing - and every charge
  due today is handed to workers in batches.
- **Charging** (`charge_batch`, a batch of charges per task): the charge rows are locked (SKIP
  LOCKED: a duplicate task skips a charge another worker holds) for the whole exchange with the
  channel. The amounts (arrears first, then months up to the due month, priced by the one quote
  service) are fixed and committed *before* the channel is called, so a retry after a crash
  sends the same requests. The channel is called once per batch with each charge's idempotency
  key, one per (mandate, month): a worker killed after the channel debited, or a timeout, is
  followed by the same request, which the channel answers with the debits it already made. The
  debits are posted together by services.post_payments_bulk (record_payment's rules) with the
  key as each payment's reference (UNIQUE(channel, reference): one payment whatever happens).
  Exactly once per mandate and month: one row, one debit at the channel, one payment.
- **Declines** (insufficient funds, account closed): tried again after
  AUTODEBIT_RETRY_DAYS * 2^(attempt-1) days, up to AUTODEBIT_MAX_ATTEMPTS tries; then the charge
  fails and the participant (a message like the reminders, consent and opt-out respected) and
  the agent who registered them or set the mandate up (an SMS to the agent's phone) are told.
  A channel that does not answer (network, 5xx) is not a decline: the task retries within the
  day and the row stays to charge.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from enrollment.models import ApiClient, Participant, StaffProfile
from enrollment.sharding import locked_rows, on_cluster

from . import coverage as rules
from .autodebit_client import ChannelAnswer, charge_many
from .errors import ContributionError, PaymentError
from .messaging import outbox
from .messaging.gateways import OutgoingMessage
from .messaging.gateways import channel as gateway
from .messaging.notifications import notify, payment_receipts_bulk
from .models import (
    AutodebitCharge,
    AutodebitMandate,
    Coverage,
    Payment,
    ReminderKind,
)
from .quotes import quote_payment
from .rates import MAX_MONTHS, add_months
from .services import BulkPayment, post_payments_bulk

log = logging.getLogger(__name__)

State = AutodebitCharge.State
OPEN_STATES = (State.PENDING, State.RETRY)
CHARGE_TASK = "contributions.autodebit_charge_batch"
AGENT_TASK = "contributions.autodebit_tell_agent"
ACCOUNT_RE = re.compile(r"^\d{8,20}$")
REASON_MAX = 200


class AutodebitError(ContributionError):
    """A mandate change refused; nothing was written."""


# --- mandates ---------------------------------------------------------------------------------
def channels() -> QuerySet[ApiClient]:
    """The channels that take mandates: active channel clients with an autodebit URL."""
    return ApiClient.objects.filter(
        scope=ApiClient.Scope.CHANNEL, active=True, revoked_at__isnull=True
    ).exclude(autodebit_url="")


def channel_by_id(value: object) -> ApiClient | None:
    """A channel that takes mandates, from a form's value (None for anything else)."""
    text = str(value or "")
    return channels().filter(pk=int(text)).first() if text.isdigit() and len(text) < 10 else None


def active_mandate(participant: Participant) -> AutodebitMandate | None:
    return (
        AutodebitMandate.objects.filter(participant=participant, status="active")
        .select_related("client")
        .first()
    )


def normalize_account(value: str) -> str:
    """Digits only; an e-wallet number may be typed +62... or 08... (kept as 62...)."""
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits


def set_up(
    *,
    participant: Participant,
    client: ApiClient | None,
    account: str,
    by: str,
    agent: StaffProfile | None = None,
) -> AutodebitMandate:
    """A new active mandate. Raises AutodebitError channel_invalid, account_invalid or
    mandate_exists (one active mandate per participant: turn it off first)."""
    if client is None or not channels().filter(pk=client.pk).exists():
        raise AutodebitError("channel_invalid", _("Choose a bank or e-wallet from the list."))
    number = normalize_account(account)
    if not ACCOUNT_RE.match(number):
        raise AutodebitError(
            "account_invalid",
            _("Enter the e-wallet phone number or the bank account number (8-20 digits)."),
        )
    with transaction.atomic():
        # The participant's coverage row orders concurrent set-ups (the partial unique index
        # is the database's guard).
        Coverage.objects.select_for_update().filter(pk=participant.pk).first()
        if active_mandate(participant) is not None:
            raise AutodebitError(
                "mandate_exists",
                _("Autodebit is already on. Turn it off first to use another account."),
            )
        return AutodebitMandate.objects.create(
            participant=participant, client=client, account=number, set_up_by=by, agent=agent
        )


def cancel(mandate: AutodebitMandate, *, by: str, reason: str = "") -> bool:
    """Cancel the mandate and every charge not made yet. False when it was already cancelled
    (a repeated cancellation changes nothing)."""
    with transaction.atomic():
        locked = AutodebitMandate.objects.select_for_update().get(
            participant_id=mandate.participant_id, pk=mandate.pk
        )
        if locked.status != AutodebitMandate.Status.ACTIVE:
            return False
        locked.status = AutodebitMandate.Status.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.cancelled_by = by
        locked.cancel_reason = reason.strip()[:REASON_MAX]
        locked.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])
        # A charge a worker holds right now finishes first (the row lock), then this waits.
        AutodebitCharge.objects.filter(
            participant_id=locked.participant_id, mandate=locked, state__in=OPEN_STATES
        ).update(state=State.CANCELLED, updated_at=timezone.now())
    mandate.refresh_from_db()
    return True


# --- planning ---------------------------------------------------------------------------------
def _next_due_month(day: date) -> date:
    """The first month whose due date is `day` or later."""
    month = add_months(rules.month_start(day), -1)  # a late due date may fall in the next month
    while rules.due_date(month) < day:
        month = add_months(month, 1)
    return month


def _window_opens(month: date) -> date:
    """The first charging day of `month`: AUTODEBIT_DAYS_BEFORE days before its due date."""
    due = rules.due_date(month)
    return due - timedelta(days=int(settings.AUTODEBIT_DAYS_BEFORE))


def period_for(day: date) -> date | None:
    """The month whose due date is within AUTODEBIT_DAYS_BEFORE days of `day` (the due date
    itself included), or None between charging windows."""
    month = _next_due_month(day)
    return month if day >= _window_opens(month) else None


def charge_key(mandate_id: int, period: date) -> str:
    """The idempotency key of (mandate, month), sent to the channel and used as the payment's
    reference."""
    return f"AD{mandate_id}-{period:%Y%m}"


_PLAN_SQL = """
INSERT INTO {charge} (participant_id, mandate_id, period, key, state, attempts,
                      next_attempt_on, channel_reference, last_error, created_at, updated_at)
SELECT m.participant_id, m.id, %(period)s, 'AD' || m.id || '-' || %(month)s, 'pending', 0,
       %(day)s, '', '', now(), now()
  FROM {mandate} m
  LEFT JOIN {coverage} c ON c.participant_id = m.participant_id
 WHERE m.status = 'active'
   AND (c.paid_through IS NULL OR c.paid_through < %(period)s)
ON CONFLICT DO NOTHING
"""


@dataclass
class PlanResult:
    period: date | None = None
    created: int = 0
    due: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "period": self.period.isoformat() if self.period else None,
            "created": self.created,
            "due": self.due,
            "batches": self.batches,
        }


def plan(*, day: date | None = None) -> PlanResult:
    """Create the charges of the month due soon, then queue every charge due on `day` (new,
    or a decline's retry) in batches through the outbox (published when this commits)."""
    day = day or timezone.localdate()
    result = PlanResult(period=period_for(day))
    with transaction.atomic():
        if result.period is not None:
            sql = _PLAN_SQL.format(
                charge=AutodebitCharge._meta.db_table,
                mandate=AutodebitMandate._meta.db_table,
                coverage=Coverage._meta.db_table,
            )
            params: dict[str, Any] = {
                "period": result.period,
                "month": f"{result.period:%Y%m}",
                "day": day,
            }
            with connection.cursor() as cursor:
                if on_cluster():  # Citus counts the rows sent, not those ON CONFLICT kept
                    cursor.execute(sql.rstrip() + " RETURNING 1", params)
                    result.created = len(cursor.fetchall())
                else:
                    cursor.execute(sql, params)
                    result.created = cursor.rowcount
        due = list(
            AutodebitCharge.objects.filter(state__in=OPEN_STATES, next_attempt_on__lte=day)
            .order_by("id")
            .values_list("id", flat=True)
        )
        size = max(1, int(settings.AUTODEBIT_BATCH))
        for start in range(0, len(due), size):
            outbox.enqueue(CHARGE_TASK, due[start : start + size], day.isoformat())
            result.batches += 1
        result.due = len(due)
    return result


# --- charging ---------------------------------------------------------------------------------
def _locked(ids: Sequence[int]) -> list[AutodebitCharge]:
    """The open charges among `ids` that no other worker holds, locked (SKIP LOCKED): the
    charge rows alone, per shard on a cluster (enrollment.sharding.locked_rows), then read with
    their mandate and participant."""
    wanted = list(ids)
    owners = list(
        AutodebitCharge.objects.filter(pk__in=wanted).values_list("participant_id", flat=True)
    )
    open_ = AutodebitCharge.objects.filter(pk__in=wanted, state__in=OPEN_STATES)
    held = [c.pk for c in locked_rows(open_, owners, skip_locked=True)]
    return list(
        AutodebitCharge.objects.filter(pk__in=held)
        .select_related("mandate__client", "participant__occupation")
        .order_by("id")
    )


def _months_to(cov: Coverage | None, period: date, today: date) -> int:
    """Months from the first month to pay on `today` (arrears first) up to `period`."""
    paid_through = cov.paid_through if cov else None
    start_month = cov.start_month if cov else rules.month_start(today)
    first = rules.first_month_to_pay(
        paid_through=paid_through, start_month=start_month, as_of=today
    )
    return min(MAX_MONTHS, max(1, rules.months_between(first, period) + 1))


def _prepare(ids: Sequence[int], today: date, outcomes: Counter[str]) -> list[AutodebitCharge]:
    """Fix what each charge asks for, committed before the channel is called (a retry after a
    crash then sends the same request); close the charges with nothing to charge. Returns the
    charges to charge."""
    ready: list[AutodebitCharge] = []
    with transaction.atomic():
        rows = _locked(ids)
        outcomes["skipped"] += len(set(ids)) - len(rows)  # done, cancelled, or held elsewhere
        covs = {c.pk: c for c in Coverage.objects.filter(pk__in=[r.participant_id for r in rows])}
        changed: list[AutodebitCharge] = []
        for charge in rows:
            cov = covs.get(charge.participant_id)
            if charge.next_attempt_on > today:
                outcomes["not_yet"] += 1
                continue
            if charge.mandate.status != AutodebitMandate.Status.ACTIVE:
                charge.state = State.CANCELLED
            elif cov is not None and cov.paid_through and cov.paid_through >= charge.period:
                charge.state = State.NOT_NEEDED
            elif charge.amount is None:
                months = _months_to(cov, charge.period, today)
                try:
                    due = quote_payment(charge.participant, cov, months=months, as_of=today)
                except PaymentError as exc:
                    charge.state, charge.last_error = State.FAILED, f"{exc.code}: {exc.message}"
                else:
                    charge.amount, charge.months = due.amount, months
                    ready.append(charge)
            else:
                ready.append(charge)  # an earlier try's request, outcome unknown: again
            if charge.state not in OPEN_STATES:
                outcomes[str(charge.state)] += 1
            charge.updated_at = timezone.now()
            changed.append(charge)
        _save(changed)
    return ready


_SAVE_SQL = """
UPDATE {table} AS c
   SET state = v.state, amount = v.amount, months = v.months, payment_id = v.payment_id,
       channel_reference = v.channel_reference, last_error = v.last_error,
       updated_at = v.updated_at
  FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::smallint[], %s::bigint[], %s::text[],
              %s::text[], %s::timestamptz[])
       AS v(id, state, amount, months, payment_id, channel_reference, last_error, updated_at)
 WHERE c.id = v.id
"""


def _save(rows: list[AutodebitCharge]) -> None:
    """One UPDATE for many charges' changing columns (Django's bulk_update builds a CASE per
    row and column in Python: most of a batch's time)."""
    if not rows:
        return
    now = timezone.now()
    columns: list[list[object]] = [[] for _ in range(8)]
    for r in rows:
        values = (r.pk, str(r.state), r.amount, r.months, r.payment_id, r.channel_reference)
        for column, value in zip(columns, (*values, r.last_error, now), strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_SQL.format(table=AutodebitCharge._meta.db_table), columns)


def _relocked(ready: list[AutodebitCharge], today: date) -> list[AutodebitCharge]:
    """The prepared charges locked again, as they are now: another worker may have charged
    (or declined) one since the preparation committed - those are dropped or refreshed."""
    still = AutodebitCharge.objects.filter(
        pk__in=[r.pk for r in ready], state__in=OPEN_STATES, next_attempt_on__lte=today
    )
    fresh = {
        row.pk: {
            "state": row.state,
            "amount": row.amount,
            "months": row.months,
            "attempts": row.attempts,
        }
        for row in locked_rows(still, [r.participant_id for r in ready], skip_locked=True)
    }
    rows = []
    for charge in ready:
        row = fresh.get(charge.pk)
        if row is not None and row["amount"] is not None:
            charge.state, charge.amount, charge.months = row["state"], row["amount"], row["months"]
            charge.attempts = row["attempts"]
            rows.append(charge)
    return rows


def charge_batch(ids: Sequence[int], *, today: date | None = None) -> Counter[str]:
    """Charge the due charges among `ids`: one request per channel for the whole batch, the
    debits posted together (services.post_payments_bulk), declines scheduled again or failed.
    Counts per outcome. Raises ChannelUnavailable when a channel did not answer: nothing of the
    batch is written then (the fixed requests stay, to be sent again)."""
    today = today or timezone.localdate()
    outcomes: Counter[str] = Counter()
    ready = _prepare(ids, today, outcomes)
    if not ready:
        return outcomes
    with transaction.atomic():
        rows = _relocked(ready, today)
        outcomes["skipped"] += len(ready) - len(rows)
        # one charge per participant per round (their coverage row is written once); a second
        # one (a rare retry of another month) waits for the next run
        firsts: dict[int, AutodebitCharge] = {}
        for charge in rows:
            firsts.setdefault(charge.participant_id, charge)
        outcomes["deferred"] += len(rows) - len(firsts)
        rows = [r for r in rows if firsts[r.participant_id] is r and r.amount is not None]
        by_client: dict[int, list[AutodebitCharge]] = {}
        for charge in rows:
            by_client.setdefault(charge.mandate.client_id, []).append(charge)
        answers: dict[str, ChannelAnswer] = {}
        for group in by_client.values():  # the rows stay locked: a duplicate task skips them
            answers.update(charge_many(group))
        paid = [r for r in rows if answers[r.key].paid]
        for charge in rows:
            if not answers[charge.key].paid:
                outcomes[_declined(charge, answers[charge.key].reason, today)] += 1
        _post(paid, answers, outcomes)
    return outcomes


def charge_one(charge_id: int, *, today: date | None = None) -> str:
    """charge_batch of one charge: its outcome."""
    done = [k for k, n in charge_batch([charge_id], today=today).items() if n]
    return done[0] if done else "skipped"


def _post(
    paid: list[AutodebitCharge], answers: dict[str, ChannelAnswer], outcomes: Counter[str]
) -> None:
    now = timezone.now()
    items = []
    for charge in paid:
        assert charge.amount is not None and charge.months is not None
        items.append(
            BulkPayment(
                participant=charge.participant,
                amount=charge.amount,
                months=charge.months,
                channel=charge.mandate.client.payment_channel,
                reference=charge.key,
                # the debit happened during our request: never later than now (the channel's
                # clock may run ahead of ours)
                paid_at=min(answers[charge.key].paid_at or now, now),
            )
        )
    posted = post_payments_bulk(items)
    payments = []
    for charge, result in zip(paid, posted, strict=True):
        charge.channel_reference = answers[charge.key].reference[:64]
        charge.updated_at = now
        if isinstance(result, Payment):
            charge.payment, charge.state = result, State.PAID
            payments.append(result)
        else:
            # The channel debited but the quote moved since the request was fixed (the month
            # turned while the channel did not answer): the money is the participant's, kept
            # on the charge (and at the channel) for the back office to apply or refund.
            log.error("autodebit %s debited but not applied: %s", charge.key, result)
            charge.state = State.FAILED
            charge.last_error = f"debited, not applied: {result.code}"[:REASON_MAX]
        outcomes[str(charge.state)] += 1
    _save(paid)
    payment_receipts_bulk(payments)


def _declined(charge: AutodebitCharge, reason: str, today: date) -> str:
    charge.attempts += 1
    charge.last_error = reason[:REASON_MAX]
    # The next try is priced again (the declined request was not taken).
    charge.amount = charge.months = None
    if charge.attempts >= int(settings.AUTODEBIT_MAX_ATTEMPTS):
        charge.state = State.FAILED
        charge.save()
        notify(charge.participant, ReminderKind.AUTODEBIT_FAILED, charge.period)
        outbox.enqueue(AGENT_TASK, charge.pk)
        return str(State.FAILED)
    wait = int(settings.AUTODEBIT_RETRY_DAYS) * 2 ** (charge.attempts - 1)
    charge.state = State.RETRY
    charge.next_attempt_on = today + timedelta(days=wait)
    charge.save()
    return str(State.RETRY)


def agent_of(charge: AutodebitCharge) -> StaffProfile | None:
    """Who follows the participant up: the agent who set the mandate up, else the one who
    registered them."""
    return charge.mandate.agent or charge.participant.registered_by


def next_charge_on(today: date, paid_through: date | None) -> date:
    """The day the next charge is asked for: the charging window of the first month not paid
    whose due date is still ahead (today's window if it is open)."""
    month = _next_due_month(today)
    if paid_through is not None and paid_through >= month:
        month = add_months(paid_through, 1)
    return max(today, _window_opens(month))


def tell_agent(charge_id: int) -> str:
    """An SMS to the agent following the participant up when a charge failed on every try
    ("sent", or why not). The gateway de-duplicates on the reference: a retried task sends one."""
    charge = (
        AutodebitCharge.objects.select_related("participant__registered_by")
        .prefetch_related("mandate__agent", "mandate__client")  # (by id: not a join, cluster)
        .filter(pk=charge_id, state=State.FAILED)
        .first()
    )
    if charge is None:
        return "not_failed"
    agent = agent_of(charge)
    if agent is None or not agent.phone:
        return "no_agent_phone"
    participant = charge.participant
    with translation.override("id"):
        text = gettext(
            "BPJS Ketenagakerjaan: autodebit for %(name)s (KPJ %(kpj)s, %(month)s) failed "
            "after %(tries)s tries (%(reason)s). Please follow up."
        ) % {
            "name": participant.full_name,
            "kpj": participant.kpj_number,
            "month": f"{charge.period:%Y-%m}",
            "tries": charge.attempts,
            "reason": charge.last_error or "-",
        }
    gateway("sms").send(
        OutgoingMessage(channel="sms", to=agent.phone, text=text, reference=f"bpu-ad-{charge.pk}")
    )
    return "sent"


def facts(participant: Participant, today: date | None = None) -> dict[str, object]:
    """What the participant's page and the agent's panel show of autodebit."""
    today = today or timezone.localdate()
    mandate = active_mandate(participant)
    cov = Coverage.objects.filter(pk=participant.pk).first() if mandate else None
    last = (
        AutodebitCharge.objects.filter(participant=participant)
        .select_related("mandate__client")
        .order_by("-period", "-id")
        .first()
    )
    return {
        "autodebit": mandate,
        "autodebit_account": mask_account(mandate.account) if mandate else "",
        "autodebit_next": next_charge_on(today, cov.paid_through if cov else None)
        if mandate
        else None,
        "autodebit_last": last,
        "autodebit_channels": list(channels().order_by("name")),
    }


def mask_account(account: str) -> str:
    return ("*" * max(0, len(account) - 4)) + account[-4:]
