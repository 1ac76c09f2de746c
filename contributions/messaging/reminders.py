"""Payment reminders: rules, the daily plan, dispatch, rendering, delivery, callbacks, opt-out.

Rules (data: ReminderRule, seeded by `seed_reminder_rules`; docs/reminders.md). On day D a rule
with offset k refers to the due date R = D - k, which must be its month's effective due date
(the due day, BPU_DUE_DAY, default 15: PP 44/2015 "paling lambat tanggal 15", or the next
working day when that is a holiday: coverage.due_date); its period is R's month M. N is a
participant's first unpaid month (paid_through + 1 month, or the registration month).
- due_soon / due_today / overdue: M is unpaid (N <= M) and the participant is not lapsed on D;
- about_to_lapse: N = M - grace: unpaid after R they lapse (grace 3 months, Perdir
  22/PERDIR.02/072022 -> BPU_GRACE_MONTHS), sent before R (k < 0);
- lapsed_winback: N = M - grace and lapsed on D (k > 0: the days after the lapse);
- payment_thanks: a payment made on day D - k; period = the first month it covers.
Everyone: consent to reminders given and not opted out. At send time a reminder whose month is
paid meanwhile (paid_through >= N) is skipped, and nothing is sent outside 08:00-20:00 in the
participant's province time zone (WIB/WITA/WIT): it waits for the next window.

Exactly once: UNIQUE(participant, kind, period) in the database; a send locks its row (SKIP
LOCKED) and acts only on `queued`; the gateway de-duplicates on our reference `bpu-rem-<id>`,
so a resend after a crash between the gateway's answer and our commit is not a second message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from bpjsportal.core import metrics
from enrollment import unique_keys
from enrollment.models import Participant
from enrollment.sharding import locked_rows, on_cluster

from .. import coverage as rules
from .. import due_dates
from ..models import (
    Coverage,
    Payment,
    Reminder,
    ReminderChannel,
    ReminderKind,
    ReminderPreference,
    ReminderRule,
    ReminderState,
)
from ..rates import QuoteError, add_months, quote_contribution
from ..selectors import amount_due_now
from . import callback_signature, pay_links, uplift
from .gateways import (
    GatewayError,
    GatewayPermanentError,
    GatewayTemporaryError,
    OutgoingMessage,
    RateLimiter,
    channel,
    channels_for,
)

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Jakarta"
# The defaults an admin starts from (ReminderRule rows are the truth once seeded).
DEFAULT_RULES: dict[str, int] = {
    ReminderKind.DUE_SOON: -3,
    ReminderKind.DUE_TODAY: 0,
    ReminderKind.OVERDUE: 5,
    ReminderKind.ABOUT_TO_LAPSE: -5,
    ReminderKind.LAPSED_WINBACK: 7,
    ReminderKind.PAYMENT_THANKS: 1,
}
STOP_WORDS = {"STOP", "BERHENTI", "UNREG", "BATAL"}


class ReminderError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def seed_reminder_rules() -> list[tuple[str, int]]:
    """Idempotently create the default rules (existing rows, maybe edited by an admin, stay)."""
    created = 0
    for kind, offset in DEFAULT_RULES.items():
        _rule, new = ReminderRule.objects.get_or_create(kind=kind, defaults={"offset_days": offset})
        created += int(new)
    return [("reminder rules", created)]


def on_reference_data_loading(**_kwargs: Any) -> list[tuple[str, int]]:
    return seed_reminder_rules()


# --- planning ---------------------------------------------------------------------------------
_COLUMNS = """
    (participant_id, kind, period, month_due, planned_for, send_after, state, channel,
     recipient, attempts, quiet_deferrals, last_error, created_at, updated_at)
"""
# The eligible participants of a rule on a day (one row each, with the reminder they would get).
_ELIGIBLE = """
SELECT p.id AS participant_id, %(kind)s AS kind, {period} AS period, {month_due} AS month_due,
       %(day)s::date AS planned_for,
       (%(day)s::date + make_time(%(from_hour)s, 0, 0))
           AT TIME ZONE coalesce(nullif(r.timezone, ''), 'Asia/Jakarta') AS send_after,
       'queued' AS state, ch.channel,
       CASE WHEN ch.channel = 'email' THEN p.email ELSE p.phone END AS recipient,
       0 AS attempts, 0 AS quiet_deferrals, '' AS last_error, now() AS created_at,
       now() AS updated_at
FROM enrollment_participant p
JOIN contributions_coverage c ON c.participant_id = p.id
JOIN enrollment_region r ON r.code = p.province_id
LEFT JOIN contributions_reminderpreference rp ON rp.participant_id = p.id
CROSS JOIN LATERAL (
    SELECT coalesce((c.paid_through + interval '1 month')::date, c.start_month) AS first_unpaid
) fu
CROSS JOIN LATERAL (
    SELECT coalesce(nullif(%(rule_channel)s, ''), nullif(rp.preferred_channel, ''),
                    %(default_channel)s) AS channel
) ch
{join}
WHERE p.consent_reminders AND rp.opted_out_at IS NULL AND ({condition})
"""
_INSERT = """
INSERT INTO contributions_reminder{columns}{eligible}
ON CONFLICT ON CONSTRAINT reminder_once_per_period DO NOTHING
"""
# With a holdout (ReminderRule.holdout_percent > 0): every eligible participant's arm is recorded
# first (the first record wins: a re-plan moves no one), then only the reminded arm gets its
# reminder. Same eligibility for both arms; contributions/messaging/uplift.py has the hash.
_INSERT_WITH_HOLDOUT = """
WITH eligible AS ({eligible}), arm AS (
    INSERT INTO contributions_reminderassignment
        (participant_id, rule_id, period, held_out, holdout_percent, assigned_on, created_at)
    SELECT e.participant_id, %(rule_id)s, e.period,
           {bucket} < %(holdout_buckets)s, %(holdout_percent)s, %(day)s, now()
    FROM eligible e
    ON CONFLICT ON CONSTRAINT reminder_assignment_once DO NOTHING
    RETURNING participant_id, held_out
)
INSERT INTO contributions_reminder{columns}
SELECT e.participant_id, e.kind, e.period, e.month_due, e.planned_for, e.send_after,
       e.state, e.channel, e.recipient, e.attempts, e.quiet_deferrals, e.last_error,
       e.created_at, e.updated_at
FROM eligible e JOIN arm a ON a.participant_id = e.participant_id AND NOT a.held_out
ON CONFLICT ON CONSTRAINT reminder_once_per_period DO NOTHING
"""

_NOT_HELD_OUT = """NOT EXISTS (
    SELECT 1 FROM contributions_reminderassignment ra
    WHERE ra.participant_id = p.id AND ra.rule_id = %(rule_id)s AND ra.period = {period}
      AND ra.held_out)"""

_DUE_KINDS = (ReminderKind.DUE_SOON, ReminderKind.DUE_TODAY, ReminderKind.OVERDUE)
EVENT_KINDS = (
    ReminderKind.WELCOME,
    ReminderKind.PAYMENT_RECEIPT,
    ReminderKind.AUTODEBIT_FAILED,  # contributions/autodebit.py
)


@dataclass
class PlanResult:
    day: date
    created: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.created.values())


def due_date_of(month: date) -> date:
    """The month's effective due date (the 15th, or the next working day: due_dates.due_date)."""
    return rules.due_date(month)


def _plan_rule(rule: ReminderRule, day: date) -> int:
    params: dict[str, Any] = {
        "kind": rule.kind,
        "day": day,
        "from_hour": int(settings.REMINDER_SEND_FROM_HOUR),
        "rule_channel": rule.channel,
        "default_channel": settings.REMINDER_DEFAULT_CHANNEL,
    }
    if rule.kind in EVENT_KINDS:  # sent from write paths (notifications.py), never planned
        return 0
    if rule.kind == ReminderKind.PAYMENT_THANKS:
        parts = {
            "period": "pay.period_start",
            "month_due": "NULL::date",
            "join": (
                "JOIN (SELECT DISTINCT ON (participant_id) participant_id, period_start "
                "FROM contributions_payment WHERE (paid_at AT TIME ZONE %(tz)s)::date = %(paid_on)s"
                " ORDER BY participant_id, paid_at DESC) pay ON pay.participant_id = p.id"
            ),
            # a payment that already had its receipt (contributions/messaging/notifications.py)
            # gets no second message
            "condition": (
                "NOT EXISTS (SELECT 1 FROM contributions_reminder rr WHERE rr.participant_id = "
                "p.id AND rr.kind = 'payment_receipt' AND rr.period = pay.period_start)"
            ),
        }
        params.update(tz=settings.TIME_ZONE, paid_on=day - timedelta(days=rule.offset_days))
    else:
        ref = day - timedelta(days=rule.offset_days)
        due_month = due_dates.month_due_on(ref)  # k days from a due date: holidays move it
        if due_month is None:
            return 0
        month = due_month
        params.update(
            month=month,
            lapse_month=add_months(month, -rules.grace_months()),
            threshold=rules.lapse_threshold(day),
        )
        if rule.kind in _DUE_KINDS:
            condition = (
                "fu.first_unpaid <= %(month)s AND fu.first_unpaid > %(threshold)s "
                "AND c.start_month <= %(month)s"
            )
        elif rule.kind == ReminderKind.ABOUT_TO_LAPSE:
            condition = "fu.first_unpaid = %(lapse_month)s AND fu.first_unpaid > %(threshold)s"
        else:  # lapsed_winback
            condition = "fu.first_unpaid = %(lapse_month)s AND fu.first_unpaid <= %(threshold)s"
        parts = {
            "period": "%(month)s::date",
            "month_due": "fu.first_unpaid",
            "join": "",
            "condition": condition,
        }
    if rule.holdout_percent > 0:  # the same eligibility, with the arms recorded first
        sql = _INSERT_WITH_HOLDOUT.format(
            columns=_COLUMNS,
            eligible=_ELIGIBLE.format(**parts),
            bucket=uplift.bucket_sql("e.participant_id", "%(rule_id)s", "e.period"),
        )
        params.update(
            rule_id=rule.pk,
            holdout_percent=rule.holdout_percent,
            holdout_buckets=uplift.held_out_below(rule.holdout_percent),
            holdout_key=uplift.holdout_key(),
        )
    else:  # no holdout now: still none for those held out earlier (a re-plan after a change)
        parts["condition"] = f"({parts['condition']}) AND {_NOT_HELD_OUT.format(**parts)}"
        sql = _INSERT.format(columns=_COLUMNS, eligible=_ELIGIBLE.format(**parts))
        params.update(rule_id=rule.pk)
    with connection.cursor() as cur:
        if on_cluster():
            # Citus reports the rows an INSERT ... SELECT sent, not those ON CONFLICT kept: count
            # the rows it returns
            cur.execute(sql.rstrip() + " RETURNING 1", params)
            return len(cur.fetchall())
        cur.execute(sql, params)
        return max(cur.rowcount, 0)


def plan_reminders(*, day: date | None = None) -> PlanResult:
    """Create the day's reminders (state queued) for every enabled rule. Safe to run again: the
    unique key makes a second run add nothing. Set-based SQL, one statement per rule."""
    day = day or timezone.localdate()
    result = PlanResult(day=day)
    for rule in ReminderRule.objects.filter(enabled=True).order_by("kind"):
        with transaction.atomic():
            result.created[rule.kind] = _plan_rule(rule, day)
    log.info("planned reminders for %s: %s", day, result.created)
    return result


# --- dispatch -----------------------------------------------------------------------------------
_CLAIM = """
UPDATE contributions_reminder SET dispatched_at = %(now)s
WHERE id IN (
    SELECT id FROM contributions_reminder
    WHERE state = 'queued' AND send_after <= %(now)s
      AND (dispatched_at IS NULL OR dispatched_at < %(stale)s)
    ORDER BY send_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
# On a Citus cluster a statement locks rows within one shard only, so FOR UPDATE SKIP LOCKED
# cannot pick across the shards: the pick is a plain subquery and the UPDATE repeats its
# conditions, which PostgreSQL re-checks on each row once it holds the row's lock - a row a
# concurrent claim took meanwhile is skipped, never claimed twice.
_CLAIM_CLUSTER = """
UPDATE contributions_reminder SET dispatched_at = %(now)s
WHERE state = 'queued' AND send_after <= %(now)s
  AND (dispatched_at IS NULL OR dispatched_at < %(stale)s)
  AND id IN (
    SELECT id FROM contributions_reminder
    WHERE state = 'queued' AND send_after <= %(now)s
      AND (dispatched_at IS NULL OR dispatched_at < %(stale)s)
    ORDER BY send_after, id
    LIMIT %(limit)s
)
RETURNING id
"""


def dispatch_due_reminders(
    *,
    enqueue: Callable[[list[int]], None],
    now: datetime | None = None,
    limit: int | None = None,
) -> int:
    """Claim queued reminders whose send time has come (and those whose earlier dispatch is older
    than REMINDER_DISPATCH_LEASE, i.e. a lost task) and hand them to `enqueue` in batches of
    REMINDER_BATCH_SIZE after the claim commits. Returns how many were dispatched."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=int(settings.REMINDER_DISPATCH_LEASE))
    batch = int(settings.REMINDER_BATCH_SIZE)
    limit = limit if limit is not None else int(settings.REMINDER_DISPATCH_MAX_PER_RUN)
    total = 0
    while total < limit:
        take = min(batch * 50, limit - total)
        with transaction.atomic(), connection.cursor() as cur:
            claim = _CLAIM_CLUSTER if on_cluster() else _CLAIM
            cur.execute(claim, {"now": now, "stale": stale, "limit": take})
            ids = sorted(row[0] for row in cur.fetchall())
        if not ids:
            break
        for i in range(0, len(ids), batch):
            enqueue(ids[i : i + batch])
        total += len(ids)
        if len(ids) < take:
            break
    return total


# --- time windows ---------------------------------------------------------------------------
def zone_of(participant: Participant) -> ZoneInfo:
    return ZoneInfo(participant.province.timezone or DEFAULT_TZ)


def in_window(local: datetime) -> bool:
    return (
        int(settings.REMINDER_SEND_FROM_HOUR) <= local.hour < int(settings.REMINDER_SEND_UNTIL_HOUR)
    )


def next_window_start(local: datetime) -> datetime:
    """The next 08:00 (local) at or after `local`, as an aware datetime in the same zone."""
    opening = time(int(settings.REMINDER_SEND_FROM_HOUR))
    day = local.date() if local.time() < opening else local.date() + timedelta(days=1)
    return datetime.combine(day, opening, tzinfo=local.tzinfo)


# --- rendering --------------------------------------------------------------------------------
def _rupiah(amount: int | None, language: str) -> str:
    text = f"{amount or 0:,}"
    return text.replace(",", ".") if language != "en" else text


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    language: str


QuoteCache = dict[tuple[object, ...], object]


def _amount_due(
    participant: Participant, cov: Coverage | None, today: date, quotes: QuoteCache | None
) -> object:
    """The Rupiah to pay now (arrears + current month); memoised per batch, since thousands of
    participants share the same income level, programmes, sector and months owed."""
    if quotes is None:
        return amount_due_now(participant, cov, today).get("amount")
    key: tuple[object, ...] = (
        participant.declared_income,
        participant.jht,
        participant.occupation_id,
        cov.paid_through if cov else None,
        cov.start_month if cov else None,
        cov.credit if cov else 0,
        today,
    )
    if (
        cov is not None
        and cov.paid_through is not None
        and cov.paid_through < add_months(rules.month_start(today), -1)
    ):  # arrears: the months may be priced by an earlier occupation (per participant)
        key = (*key, participant.pk)
    if key not in quotes:
        quotes[key] = amount_due_now(participant, cov, today).get("amount")
    return quotes[key]


def _monthly(participant: Participant, today: date) -> int | None:
    """One month's contribution from this month (the rate book's price, discounts included)."""
    try:
        return quote_contribution(
            declared_income=participant.declared_income,
            programmes=participant.programmes,
            months=1,
            first_month=rules.month_start(today),
            sector=participant.occupation.sector,
        ).total
    except QuoteError:
        return None


def render_reminder(
    reminder: Reminder,
    *,
    today: date | None = None,
    cov: Coverage | None = None,
    quotes: QuoteCache | None = None,
) -> Rendered:
    """The message in the participant's language (Bahasa Indonesia unless they chose English):
    amount due (quote of arrears + current month), due date, KPJ, where to pay."""
    participant = reminder.participant
    language = "en" if (participant.language or "").startswith("en") else "id"
    today = today or timezone.localdate()
    if cov is None:
        cov = Coverage.objects.filter(pk=participant.pk).first()
    if reminder.kind == ReminderKind.WELCOME:  # "pay Rp X each month": the monthly price,
        amount: object = _monthly(participant, today)  # not what is due at sending time
    else:
        amount = _amount_due(participant, cov, today, quotes)
    with translation.override(language):
        values = {
            "name": participant.full_name.split()[0] if participant.full_name else "",
            "kpj": participant.kpj_number,
            "amount": _rupiah(amount if isinstance(amount, int) else 0, language),
            "due_date": formats.date_format(due_date_of(reminder.period), "j F Y"),
            "places": _("a bank, Alfamart/Indomaret, an e-wallet or your Perisai agent"),
            "paid_through": formats.date_format(cov.paid_through, "F Y")
            if cov and cov.paid_through
            else "",
            "due_day": str(rules.due_day()),
            "paid": "",
            "reference": "",
        }
        if reminder.kind == ReminderKind.PAYMENT_RECEIPT:
            payment = (
                Payment.objects.filter(participant=participant, period_start=reminder.period)
                .order_by("-paid_at", "-id")
                .first()
            )
            if payment is not None:
                values["paid"] = _rupiah(payment.amount, language)
                values["reference"] = payment.reference
        templates = {
            ReminderKind.DUE_SOON: _(
                "BPJS Ketenagakerjaan: Hello %(name)s, your BPU contribution (KPJ %(kpj)s) of "
                "Rp %(amount)s is due on %(due_date)s. Pay at %(places)s. Reply STOP to stop "
                "reminders."
            ),
            ReminderKind.DUE_TODAY: _(
                "BPJS Ketenagakerjaan: %(name)s, today %(due_date)s is the last day to pay your "
                "BPU contribution (KPJ %(kpj)s): Rp %(amount)s. Pay at %(places)s. Reply STOP to "
                "stop reminders."
            ),
            ReminderKind.OVERDUE: _(
                "BPJS Ketenagakerjaan: %(name)s, your BPU contribution (KPJ %(kpj)s) was due on "
                "%(due_date)s. Please pay Rp %(amount)s at %(places)s to stay protected. Reply "
                "STOP to stop reminders."
            ),
            ReminderKind.ABOUT_TO_LAPSE: _(
                "BPJS Ketenagakerjaan: %(name)s, your protection (KPJ %(kpj)s) ends unless "
                "Rp %(amount)s is paid by %(due_date)s. Pay at %(places)s. Reply STOP to stop "
                "reminders."
            ),
            ReminderKind.LAPSED_WINBACK: _(
                "BPJS Ketenagakerjaan: %(name)s, your protection (KPJ %(kpj)s) has lapsed. Pay "
                "Rp %(amount)s at %(places)s to be protected again from this month. Reply STOP "
                "to stop reminders."
            ),
            ReminderKind.PAYMENT_THANKS: _(
                "BPJS Ketenagakerjaan: thank you, %(name)s. Your payment for KPJ %(kpj)s was "
                "received; you are protected through %(paid_through)s. Reply STOP to stop "
                "reminders."
            ),
            ReminderKind.WELCOME: _(
                "BPJS Ketenagakerjaan: welcome, %(name)s. You are registered as a BPU "
                "participant; your KPJ number is %(kpj)s. Pay Rp %(amount)s each month by day "
                "%(due_day)s at %(places)s. Reply STOP to stop reminders."
            ),
            ReminderKind.PAYMENT_RECEIPT: _(
                "BPJS Ketenagakerjaan: payment received, %(name)s. Rp %(paid)s for KPJ %(kpj)s "
                "(ref. %(reference)s); you are protected through %(paid_through)s. Reply STOP to "
                "stop reminders."
            ),
            ReminderKind.AUTODEBIT_FAILED: _(
                "BPJS Ketenagakerjaan: %(name)s, the automatic payment for KPJ %(kpj)s could "
                "not be taken from your account. Please pay Rp %(amount)s by %(due_date)s at "
                "%(places)s to stay protected. Reply STOP to stop reminders."
            ),
        }
        text = templates[ReminderKind(reminder.kind)] % values
        if reminder.kind in pay_links.LINKED_KINDS and reminder.pk is not None:
            text += " " + _("Pay here: %(link)s") % {
                "link": pay_links.url_for(reminder, today=today)
            }
        subject = _("BPJS Ketenagakerjaan: your BPU contribution")
    return Rendered(subject=str(subject), text=str(text), language=language)


# --- delivery ---------------------------------------------------------------------------------
@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    skipped_paid: int = 0
    opted_out: int = 0
    deferred: int = 0
    skipped_quiet_hours: int = 0
    not_queued: int = 0
    retry: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _preference(participant: Participant) -> ReminderPreference | None:
    try:
        return participant.reminder_preference
    except ReminderPreference.DoesNotExist:
        return None


def _address(participant: Participant, channel_name: str) -> str:
    return participant.email if channel_name == ReminderChannel.EMAIL else participant.phone


_UPDATE_FIELDS = [  # the order of _SAVE's columns
    "state",
    "channel",
    "recipient",
    "attempts",
    "quiet_deferrals",
    "gateway_message_id",
    "last_error",
    "dispatched_at",
    "send_after",
    "sent_at",
    "failed_at",
    "updated_at",
]


def deliver_batch(ids: Iterable[int], *, now: datetime | None = None) -> BatchResult:
    """Send the queued reminders among `ids`; a no-op for any not queued (already handled) or
    locked by another worker. One transaction: states are committed together after the sends; a
    crash rolls back and the resend is de-duplicated by the gateway on the reference.
    Transient gateway errors leave the reminder queued and list it in `result.retry`."""
    now = now or timezone.now()
    result = BatchResult()
    max_attempts = int(settings.REMINDER_MAX_ATTEMPTS)
    max_delay = int(settings.REMINDER_MAX_DELAY_DAYS)
    wanted = list(ids)
    with transaction.atomic():
        # Locked first (the reminder rows alone: on a cluster a lock statement may not join,
        # and is taken per shard by locked_rows), then read with their participant's rows.
        owners = list(
            Reminder.objects.filter(id__in=wanted).values_list("participant_id", flat=True)
        )
        queued = Reminder.objects.filter(id__in=wanted, state=ReminderState.QUEUED)
        locked = [r.pk for r in locked_rows(queued, owners, skip_locked=True)]
        reminders = list(
            Reminder.objects.filter(pk__in=locked)
            .select_related(
                "participant",
                "participant__province",
                "participant__occupation",
                "participant__coverage",
                "participant__reminder_preference",
            )
            .order_by("id")
        )
        result.not_queued = len(wanted) - len(reminders)
        outgoing: list[_Outgoing] = []
        quotes: QuoteCache = {}
        limiter = RateLimiter(chunk=min(20, max(1, len(reminders))))
        for r in reminders:
            r.updated_at = now
            p = r.participant
            pref = _preference(p)
            if not p.consent_reminders or (pref is not None and pref.opted_out_at is not None):
                r.state = ReminderState.OPTED_OUT
                result.opted_out += 1
                continue
            cov: Coverage | None = getattr(p, "coverage", None)
            if (
                r.kind != ReminderKind.PAYMENT_THANKS
                and r.month_due is not None
                and cov is not None
                and cov.paid_through is not None
                and cov.paid_through >= r.month_due
            ):
                r.state = ReminderState.SKIPPED_PAID
                result.skipped_paid += 1
                continue
            local = now.astimezone(zone_of(p))
            if not in_window(local):
                opening = next_window_start(local)
                if opening.date() > r.planned_for + timedelta(days=max_delay):
                    r.state = ReminderState.SKIPPED_QUIET_HOURS
                    result.skipped_quiet_hours += 1
                else:
                    r.send_after = opening
                    r.dispatched_at = None
                    r.quiet_deferrals += 1
                    result.deferred += 1
                continue
            rendered = render_reminder(r, today=timezone.localdate(now), cov=cov, quotes=quotes)
            channels = channels_for(r.channel, has_email=bool(p.email))
            outgoing.append(_Outgoing(r, p, rendered, channels))
        _send_all(outgoing, now=now, limiter=limiter, result=result, max_attempts=max_attempts)
        result.retry.sort()
        _save_states(reminders)
        metrics.reminders_decided(reminders)  # sent, failed, skipped: counted after the commit
    return result


_SAVE = """
UPDATE contributions_reminder r SET
    state = v.state, channel = v.channel, recipient = v.recipient, attempts = v.attempts,
    quiet_deferrals = v.quiet_deferrals, gateway_message_id = v.gateway_message_id,
    last_error = v.last_error, dispatched_at = v.dispatched_at, send_after = v.send_after,
    sent_at = v.sent_at, failed_at = v.failed_at, updated_at = v.updated_at
FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[], %s::smallint[],
            %s::smallint[], %s::varchar[], %s::varchar[], %s::timestamptz[], %s::timestamptz[],
            %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
    AS v(id, state, channel, recipient, attempts, quiet_deferrals, gateway_message_id,
         last_error, dispatched_at, send_after, sent_at, failed_at, updated_at)
WHERE r.id = v.id
"""


def _save_states(rows: list[Reminder]) -> None:
    """One UPDATE for the whole batch (bulk_update's CASE expressions cost more than the
    sends)."""
    if not rows:
        return
    # the gateway's message ids are unique across participants: claimed first (on a cluster the
    # column's own constraint is gone; enrollment/unique_keys.py); the rows of a batch were
    # queued, so any id they carry was set by this dispatch
    taken = unique_keys.claim(
        [
            (GATEWAY_MESSAGE, r.gateway_message_id, r.participant_id)
            for r in rows
            if r.gateway_message_id
        ]
    )
    if taken:
        raise unique_keys.KeyTaken(taken, {GATEWAY_MESSAGE: GATEWAY_MESSAGE_CONSTRAINT})
    columns = ["pk"] + [f for f in _UPDATE_FIELDS]
    values = [[getattr(r, c) for r in rows] for c in columns]
    with connection.cursor() as cur:
        cur.execute(_SAVE, values)


GATEWAY_MESSAGE = "gateway_message"
GATEWAY_MESSAGE_CONSTRAINT = "contributions_reminder_gateway_message_id_key"


@dataclass
class _Outgoing:
    """A reminder to send: its text, the channels still to try (preferred first), the
    permanent refusals so far, and whether a request carried it yet (attempts counts once)."""

    r: Reminder
    p: Participant
    rendered: Rendered
    channels: list[str]
    errors: list[str] = field(default_factory=list)
    tried: bool = False


def _send_all(
    outgoing: list[_Outgoing],
    *,
    now: datetime,
    limiter: RateLimiter,
    result: BatchResult,
    max_attempts: int,
) -> None:
    """Send in rounds: each round groups the reminders by the channel they try next and sends
    them REMINDER_GATEWAY_BATCH to a gateway request (email one by one); a permanent refusal
    moves a reminder to its next channel in the next round, a temporary error keeps it queued
    (`result.retry`), and a gateway that cannot be reached stops every further call for this
    batch (no timeout per message)."""
    size = max(1, int(settings.REMINDER_GATEWAY_BATCH))
    down = False
    pending = outgoing
    while pending:
        by_channel: dict[str, list[_Outgoing]] = {}
        for item in pending:
            while item.channels and not _address(item.p, item.channels[0]):
                item.channels.pop(0)
            if not item.channels:
                _give_up(item, now, result)
                continue
            by_channel.setdefault(item.channels[0], []).append(item)
        pending = []
        for name, items in by_channel.items():
            step = 1 if name == ReminderChannel.EMAIL else size
            for chunk in (items[i : i + step] for i in range(0, len(items), step)):
                if down:
                    result.retry.extend(item.r.pk for item in chunk)
                    continue
                down = _send_chunk(name, chunk, pending, now, limiter, result, max_attempts)


def _send_chunk(
    name: str,
    chunk: list[_Outgoing],
    pending: list[_Outgoing],
    now: datetime,
    limiter: RateLimiter,
    result: BatchResult,
    max_attempts: int,
) -> bool:
    """One gateway request (or one email). Returns True when the gateway is unreachable."""
    messages = []
    for item in chunk:
        limiter.take(name)
        if not item.tried:
            item.r.attempts += 1
            item.tried = True
        messages.append(
            OutgoingMessage(
                channel=name,
                to=_address(item.p, name),
                text=item.rendered.text,
                reference=f"bpu-rem-{item.r.pk}",
                subject=item.rendered.subject,
            )
        )
    try:
        outcomes = channel(name).send_many(messages)
    except GatewayTemporaryError as exc:
        for item in chunk:
            item.r.last_error = f"{name}: {exc}"[:255]
            _retry_later(item.r, now, result, max_attempts)
        return exc.status is None
    for item, message, outcome in zip(chunk, messages, outcomes, strict=True):
        r = item.r
        if isinstance(outcome, GatewayPermanentError):
            item.errors.append(f"{name}: {outcome}")
            item.channels.pop(0)
            pending.append(item)  # the next channel, next round
        elif isinstance(outcome, GatewayError):
            r.last_error = f"{name}: {outcome}"[:255]
            _retry_later(r, now, result, max_attempts)
        else:
            r.state = ReminderState.SENT
            r.channel = name
            r.recipient = message.to
            r.gateway_message_id = outcome
            r.sent_at = now
            r.last_error = "; ".join(item.errors)[:255]
            result.sent += 1
    return False


def _retry_later(r: Reminder, now: datetime, result: BatchResult, max_attempts: int) -> None:
    if r.attempts >= max_attempts:
        r.state = ReminderState.FAILED
        r.failed_at = now
        result.failed += 1
    else:
        result.retry.append(r.pk)


def _give_up(item: _Outgoing, now: datetime, result: BatchResult) -> None:
    """Every channel refused it, or none can reach the participant."""
    r = item.r
    if not item.tried:
        r.attempts += 1
    r.state = ReminderState.FAILED
    r.failed_at = now
    r.last_error = ("; ".join(item.errors) or "no address for any channel")[:255]
    result.failed += 1


# --- gateway callbacks --------------------------------------------------------------------------
def callback_headers(
    body: bytes, *, secret: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """X-Timestamp and X-Signature of a callback signed now (or at `timestamp`), as the gateway
    sends them (contributions/messaging/callback_signature.py)."""
    key = secret if secret is not None else settings.REMINDER_CALLBACK_SECRET
    return callback_signature.headers(body, key, timestamp)


def callback_refusal(body: bytes, timestamp: str, signature: str) -> str | None:
    """None for an authentic callback signed within REMINDER_CALLBACK_MAX_AGE seconds of now;
    else "bad_signature" or "expired" (a replay of an old callback)."""
    return callback_signature.refusal(
        body,
        timestamp,
        signature,
        secret=settings.REMINDER_CALLBACK_SECRET,
        max_age=settings.REMINDER_CALLBACK_MAX_AGE,
        now=timezone.now().timestamp(),
    )


def parse_callback(body: bytes) -> dict[str, Any]:
    """The callback's JSON object, or ReminderError("malformed", ...)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReminderError("malformed", "body is not JSON") from exc
    if not isinstance(data, dict):
        raise ReminderError("malformed", "body is not a JSON object")
    kind = data.get("type")
    if kind == "status":
        if not isinstance(data.get("message_id"), str) or not data["message_id"]:
            raise ReminderError("malformed", "message_id missing")
        if data.get("status") not in ("delivered", "failed"):
            raise ReminderError("malformed", "status must be delivered or failed")
    elif kind == "inbound":
        if not isinstance(data.get("from"), str) or not isinstance(data.get("text"), str):
            raise ReminderError("malformed", "from and text are required")
    else:
        raise ReminderError("malformed", "type must be status or inbound")
    return data


@transaction.atomic
def record_delivery_status(*, message_id: str, status: str, error: str = "") -> Reminder:
    """Apply a delivery report. Idempotent; a late 'delivered' overrides 'failed' (the handset
    has it), a 'failed' never overrides 'delivered'. Unknown id -> ReminderError("unknown")."""
    found = Reminder.objects.filter(gateway_message_id=message_id[:64])
    owner = found.values_list("participant_id", flat=True).first()
    reminder = found.select_for_update().filter(participant_id=owner).first() if owner else None
    if reminder is None:
        raise ReminderError("unknown_message", "no reminder has this message id")
    now = timezone.now()
    if status == "delivered" and reminder.state in (ReminderState.SENT, ReminderState.FAILED):
        reminder.state = ReminderState.DELIVERED
        reminder.delivered_at = now
    elif status == "failed" and reminder.state == ReminderState.SENT:
        reminder.state = ReminderState.FAILED
        reminder.failed_at = now
        reminder.last_error = (error or "gateway reported failure")[:255]
    else:
        return reminder
    reminder.save(update_fields=["state", "delivered_at", "failed_at", "last_error", "updated_at"])
    metrics.delivery_reported(status)  # counted after the commit
    return reminder


def normalize_sender(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return "+" + digits if digits else ""


def is_stop(text: str) -> bool:
    words = text.strip().upper().split()
    return bool(words) and words[0].strip(".!") in STOP_WORDS


def handle_inbound(*, sender: str, text: str) -> int:
    """An inbound message: STOP/BERHENTI opts out every participant we messaged at that number.
    Returns how many were opted out; other texts are ignored (0). Unknown sender on STOP ->
    ReminderError("unknown_sender")."""
    if not is_stop(text):
        return 0
    phone = normalize_sender(sender)
    participant_ids = set(
        Reminder.objects.filter(recipient=phone).values_list("participant_id", flat=True)
    )
    if not participant_ids:
        raise ReminderError("unknown_sender", "no reminder was sent to this number")
    for participant in Participant.objects.filter(pk__in=participant_ids):
        opt_out(participant=participant, reason=f"inbound '{text.strip()[:40]}' from {phone}")
    return len(participant_ids)


# --- opt-out ------------------------------------------------------------------------------------
@transaction.atomic
def opt_out(*, participant: Participant, reason: str, user: Any = None) -> ReminderPreference:
    """Stop all reminders for the participant (queued ones become opted_out). Idempotent."""
    pref, _created = ReminderPreference.objects.select_for_update().get_or_create(
        participant=participant
    )
    if pref.opted_out_at is None:
        pref.opted_out_at = timezone.now()
        pref.reason = reason[:255]
        pref.updated_by = user if getattr(user, "is_authenticated", False) else None
        pref.save()
    Reminder.objects.filter(participant=participant, state=ReminderState.QUEUED).update(
        state=ReminderState.OPTED_OUT, updated_at=timezone.now()
    )
    return pref


@transaction.atomic
def opt_in(*, participant: Participant, user: Any = None) -> ReminderPreference:
    pref, _created = ReminderPreference.objects.select_for_update().get_or_create(
        participant=participant
    )
    pref.opted_out_at = None
    pref.reason = ""
    pref.updated_by = user if getattr(user, "is_authenticated", False) else None
    pref.save()
    return pref


# --- read paths -----------------------------------------------------------------------------------
FIGURE_COLUMNS = (
    "planned",
    "queued",
    "held_quiet_hours",
    "sent",
    "delivered",
    "failed",
    "skipped_paid",
    "skipped_quiet_hours",
    "opted_out",
)


def day_figures(day: date) -> dict[str, dict[str, int]]:
    """Per channel (and 'all'): the day's plan and what became of it. `sent` counts every
    reminder the gateway accepted (sent, delivered, and failed after sending)."""
    qs = Reminder.objects.filter(planned_for=day)
    rows = qs.values("channel").annotate(
        planned=Count("id"),
        queued=Count("id", filter=Q(state=ReminderState.QUEUED)),
        held_quiet_hours=Count("id", filter=Q(state=ReminderState.QUEUED, quiet_deferrals__gt=0)),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        delivered=Count("id", filter=Q(state=ReminderState.DELIVERED)),
        failed=Count("id", filter=Q(state=ReminderState.FAILED)),
        skipped_paid=Count("id", filter=Q(state=ReminderState.SKIPPED_PAID)),
        skipped_quiet_hours=Count("id", filter=Q(state=ReminderState.SKIPPED_QUIET_HOURS)),
        opted_out=Count("id", filter=Q(state=ReminderState.OPTED_OUT)),
    )
    out: dict[str, dict[str, int]] = {}
    total = dict.fromkeys(FIGURE_COLUMNS, 0)
    for values in rows.order_by("channel"):
        row: dict[str, Any] = dict(values)
        out[row["channel"]] = {c: int(row[c]) for c in FIGURE_COLUMNS}
        for c in FIGURE_COLUMNS:
            total[c] += int(row[c])
    out["all"] = total
    return out


def reminders_of(participant: Participant) -> QuerySet[Reminder]:
    return Reminder.objects.filter(participant=participant).order_by("-planned_for", "-id")


def reminder_panel(participant: Participant) -> dict[str, object]:
    pref = ReminderPreference.objects.filter(pk=participant.pk).first()
    return {
        "reminders_recent": list(reminders_of(participant)[:10]),
        "reminder_preference": pref,
        "reminders_opted_out": bool(pref and pref.opted_out_at),
    }
