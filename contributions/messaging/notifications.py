"""Messages sent at once from write paths: a welcome after registration (with the KPJ number) and
a receipt for a payment posted singly (pages, API, `record_payment`). Each is a Reminder row
(kind `welcome` / `payment_receipt`) created in the write's own transaction plus an outbox row
that asks a worker to send it (`contributions.send_reminder_batch`); delivery then follows every
reminder rule: consent, opt-out, preferred channel and fallbacks, the local sending window,
exactly once (UNIQUE(participant, kind, period), the row lock, the gateway reference).

With Redis down nothing here fails: the rows wait and the relay publishes them later. A lost
task is covered twice over: the reminder is created `dispatched_at = now`, so the every-minute
dispatcher hands it out again after REMINDER_DISPATCH_LEASE if it is still queued.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.constants import OnConflict
from django.utils import timezone

from bpjsportal.core import rowsql
from bpjsportal.core.distribution import on_cluster
from enrollment.models import Participant

from .. import coverage as rules
from ..models import (
    Payment,
    Reminder,
    ReminderKind,
    ReminderPreference,
    ReminderRule,
    ReminderState,
)
from . import outbox

SEND_TASK = "contributions.send_reminder_batch"


def _channel(
    participant: Participant,
    rule: ReminderRule | None,
    prefs: dict[int, ReminderPreference] | None = None,
) -> str | None:
    """The channel to use, or None when the participant must not be messaged (`prefs`: the
    preference rows of the participants concerned, when the caller read them already)."""
    if not participant.consent_reminders:
        return None
    if prefs is None:
        pref = ReminderPreference.objects.filter(pk=participant.pk).first()
    else:
        pref = prefs.get(participant.pk)
    if pref is not None and pref.opted_out_at is not None:
        return None
    return (
        (rule.channel if rule else "")
        or (pref.preferred_channel if pref else "")
        or settings.REMINDER_DEFAULT_CHANNEL
    )


def _rule(kind: str) -> tuple[bool, ReminderRule | None]:
    """(switched on, the kind's rule row if there is one): no row means on with the defaults."""
    rule = ReminderRule.objects.filter(kind=kind).first()
    return (rule is None or rule.enabled), rule


def _queued(participant: Participant, channel: str, now: datetime) -> dict[str, object]:
    """The fields of a message queued now through the outbox (notify, payment_receipts_bulk)."""
    recipient = participant.email if channel == "email" else participant.phone
    return {
        "planned_for": timezone.localdate(now),
        "send_after": now,
        "state": ReminderState.QUEUED,
        "channel": channel,
        "recipient": recipient or "",
        "dispatched_at": now,  # handed to the outbox; the dispatcher's lease is the backstop
    }


def notify(participant: Participant, kind: str, period: date) -> Reminder | None:
    """Create the reminder (once per participant, kind and period) and queue its sending through
    the outbox, in the caller's transaction. None when switched off (a disabled ReminderRule
    row for the kind), without consent, opted out, or already created. On a single server the
    whole of it is one statement (_NOTIFY); on a Citus cluster, which does not run that chain
    (it writes a sharded table and the outbox in one statement), three."""
    if not participant.consent_reminders:
        return None
    reminder = Reminder(participant=participant, kind=kind, period=period)
    if not on_cluster():
        return _notify_in_one(reminder)
    channel = _notify_channel(participant, kind)
    if channel is None:
        return None
    _queue(reminder, channel, timezone.now())
    if not _insert_once(reminder):
        return None
    outbox.enqueue(SEND_TASK, [reminder.pk])
    return reminder


# `_channel`'s rule as SQL, over the kind's rule row `r` and the participant's preference row
# `p` (either may be missing): NULL = do not message. tests/contributions/test_notifications.py
# checks that both forms agree.
CHANNEL_SQL = """CASE WHEN r.enabled IS FALSE THEN NULL
    WHEN p.participant_id IS NOT NULL AND p.opted_out_at IS NOT NULL THEN NULL
    ELSE coalesce(nullif(r.channel, ''), nullif(p.preferred_channel, ''), %s) END"""

_CHOICE = f"""SELECT {CHANNEL_SQL} AS channel FROM (SELECT 1) AS one
LEFT JOIN contributions_reminderrule r ON r.kind = %s
LEFT JOIN contributions_reminderpreference p ON p.participant_id = %s"""  # noqa: S608

# The channel chosen, the reminder inserted unless it exists, its outbox row: one statement.
_NOTIFY = """
WITH choice AS ({choice}),
reminder AS ({reminder} ON CONFLICT DO NOTHING RETURNING id, channel, recipient),
message AS ({message} RETURNING id)
SELECT reminder.id, reminder.channel, reminder.recipient, (SELECT id FROM message) FROM reminder
"""


def _choice(participant: Participant, kind: str) -> tuple[str, list[Any]]:
    return _CHOICE, [settings.REMINDER_DEFAULT_CHANNEL, kind, participant.pk]


def _notify_channel(participant: Participant, kind: str) -> str | None:
    """The channel `_channel` would choose for one participant, the rule and the preference read
    in one statement (consent is checked by the caller)."""
    sql, params = _choice(participant, kind)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        (channel,) = cur.fetchone()
    return None if channel is None else str(channel)


def _queue(reminder: Reminder, channel: str, now: datetime) -> None:
    for name, value in _queued(reminder.participant, channel, now).items():
        setattr(reminder, name, value)


def _notify_in_one(reminder: Reminder) -> Reminder | None:
    participant = reminder.participant
    _queue(reminder, "sms", timezone.now())  # channel and recipient: replaced by the choice's
    choice, choice_params = _choice(participant, reminder.kind)
    recipient = "CASE WHEN choice.channel = 'email' THEN %s ELSE %s END"
    insert, insert_params = rowsql.insert_select(
        reminder,
        source="choice WHERE choice.channel IS NOT NULL",
        columns={"channel": "choice.channel", "recipient": recipient},
    )
    message = outbox.message(SEND_TASK, [])  # args: [[the reminder's id]], set in the SQL
    args = "jsonb_build_array(jsonb_build_array(reminder.id))"
    queued, queued_params = rowsql.insert_select(message, source="reminder", columns={"args": args})
    sql = _NOTIFY.format(choice=choice, reminder=insert, message=queued)
    params = [*choice_params, *insert_params, participant.email or "", participant.phone or ""]
    with connection.cursor() as cur:
        cur.execute(sql, [*params, *queued_params])
        row = cur.fetchone()
    if row is None:  # switched off, opted out, or made already
        return None
    reminder.pk, reminder.channel, reminder.recipient, message.pk = row
    message.args = [[reminder.pk]]
    for saved in (reminder, message):
        saved._state.adding = False
        saved._state.db = connection.alias
    return reminder


def _insert_once(reminder: Reminder) -> bool:
    """INSERT the reminder unless its (participant, kind, period) exists: one statement
    (INSERT ... ON CONFLICT DO NOTHING RETURNING id) where get_or_create took four (SELECT,
    SAVEPOINT, INSERT, RELEASE). The only unique keys a new row can hit are the primary key and
    reminder_once_per_period (gateway_message_id is NULL until it is sent). True and the pk
    set when inserted."""
    fields = [f for f in Reminder._meta.local_concrete_fields if not f.primary_key]
    rows = Reminder._base_manager._insert(  # type: ignore[attr-defined]
        [reminder],
        fields=fields,
        returning_fields=[Reminder._meta.pk],
        on_conflict=OnConflict.IGNORE,
    )
    if not rows or rows[0] is None:
        return False
    reminder.pk = rows[0][0]
    reminder._state.adding = False
    reminder._state.db = Reminder._base_manager.db
    return True


def welcome_after_registration_bulk(participants: list[Participant]) -> None:
    """Bulk registrations (a partner's API upload of up to 1,000 rows) send no welcome message,
    as payment imports send no receipts: the partner enrols its members and tells them; the
    reminder plan reaches them when a payment falls due. Keeps the bulk path set-based."""
    return None


def welcome_after_registration(participant: Participant) -> None:
    """After-registration step (enrollment.hooks), inside the registration transaction."""
    if not settings.NOTIFY_ON_REGISTRATION:
        return
    month = rules.month_start(timezone.localdate(participant.created_at))
    notify(participant, ReminderKind.WELCOME, month)


def payment_received(payment: Payment, **_signal: object) -> None:
    """A newly posted payment's receipt: the receiver of `payment_recorded`, which record_payment
    sends inside its transaction (contributions/signals.py)."""
    if not settings.NOTIFY_ON_PAYMENT:
        return
    notify(payment.participant, ReminderKind.PAYMENT_RECEIPT, payment.period_start)


def payment_receipts_bulk(payments: list[Payment]) -> int:
    """The receipts of payments posted together (autodebit charges: contributions/autodebit.py),
    by the rules of `notify` - the kind's rule switched on, consent, opt-out, the channel - as
    rows written at once and one outbox row per REMINDER_BATCH_SIZE of them, in the caller's
    transaction. A receipt already made for a participant and month is not made again."""
    if not settings.NOTIFY_ON_PAYMENT or not payments:
        return 0
    on, rule = _rule(ReminderKind.PAYMENT_RECEIPT)
    if not on:
        return 0
    ids = [p.participant_id for p in payments]
    prefs = {r.pk: r for r in ReminderPreference.objects.filter(pk__in=ids)}
    made = set(
        Reminder.objects.filter(
            participant_id__in=ids, kind=ReminderKind.PAYMENT_RECEIPT
        ).values_list("participant_id", "period")
    )
    now = timezone.now()
    rows = []
    for payment in payments:
        participant = payment.participant
        channel = _channel(participant, rule, prefs)
        if channel is None or (participant.pk, payment.period_start) in made:
            continue
        rows.append(
            Reminder(
                participant=participant,
                kind=ReminderKind.PAYMENT_RECEIPT,
                period=payment.period_start,
                **_queued(participant, channel, now),
            )
        )
    created = Reminder.objects.bulk_create(rows)
    size = max(1, int(settings.REMINDER_BATCH_SIZE))
    for start in range(0, len(created), size):
        outbox.enqueue(SEND_TASK, [r.pk for r in created[start : start + size]])
    return len(created)
