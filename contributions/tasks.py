"""Celery tasks of contributions: thin, idempotent, safe to retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from . import autodebit, credits, services
from .autodebit_client import ChannelUnavailable
from .commissions import services as commissions
from .coverage import month_start
from .messaging import codes, outbox, reminders
from .messaging.gateways import GatewayTemporaryError
from .rates import add_months


@shared_task(acks_late=True, name="contributions.refresh_coverage_statuses")
def refresh_coverage_statuses(as_of: str | None = None) -> dict[str, int]:
    """Daily (CELERY_BEAT_SCHEDULE): pay the months credit on account pays in full (PP 50/2025,
    contributions/credits.py), then move coverage statuses as dates pass. `as_of` ISO date."""
    paid_from_credit = credits.cover_all()
    result = services.refresh_coverage_statuses(as_of=date.fromisoformat(as_of) if as_of else None)
    return {**result, "months_paid_from_credit": paid_from_credit}


# --- payment reminders (contributions/messaging/reminders.py) ---------------------------------
def _when(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


@shared_task(acks_late=True, name="contributions.plan_reminders")
def plan_reminders(day: str | None = None, dispatch: bool = True) -> dict[str, int]:
    """Daily (CELERY_BEAT_SCHEDULE): plan the day's reminders, then dispatch the due ones. A
    second run (beat fired twice, retried task) plans nothing new."""
    result = reminders.plan_reminders(day=date.fromisoformat(day) if day else None)
    if dispatch:
        dispatch_reminders.delay()
    return result.created


def _enqueue(now: str | None) -> Callable[[list[int]], None]:
    def enqueue(ids: list[int]) -> None:
        send_reminder_batch.delay(ids, now)

    return enqueue


@shared_task(acks_late=True, name="contributions.dispatch_reminders")
def dispatch_reminders(now: str | None = None, limit: int | None = None) -> int:
    """Every minute: fan the due reminders out to workers in batches. `now` (ISO datetime) is
    for tests and replays; it is passed on to the batches."""
    return reminders.dispatch_due_reminders(enqueue=_enqueue(now), now=_when(now), limit=limit)


@shared_task(
    bind=True,
    acks_late=True,
    name="contributions.send_reminder_batch",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=10,
)
def send_reminder_batch(self: Task, ids: list[int], now: str | None = None) -> dict[str, Any]:
    """Send one batch; reminders hit by a transient gateway error are retried with exponential
    backoff (their own new task); permanent errors are not retried. Idempotent."""
    result = reminders.deliver_batch(ids, now=_when(now))
    if result.retry:
        retries = self.request.retries or 0
        if retries < int(settings.REMINDER_MAX_ATTEMPTS):
            delay = float(settings.REMINDER_RETRY_BACKOFF) * (2**retries)
            raise self.retry(args=(result.retry, now), countdown=min(delay, 600.0))
    return result.as_dict()


@shared_task(acks_late=True, name="contributions.relay_outbox")
def relay_outbox(limit: int | None = None) -> dict[str, Any]:
    """Every few seconds (CELERY_BEAT_SCHEDULE): publish the outbox rows written by requests
    (contributions/messaging/outbox.py). Idempotent: rows are locked SKIP LOCKED and marked
    published."""
    return outbox.relay(limit=limit).as_dict()


@shared_task(
    acks_late=True,
    name="contributions.send_participant_code",
    autoretry_for=(GatewayTemporaryError, OperationalError, InterfaceError),
    retry_backoff=1,
    max_retries=3,
)
def send_participant_code(code_id: int, code: str, purpose: str = "login") -> str:
    """A participant's one-time code to their phone (contributions/messaging/codes.py): to log
    in, or - purpose "autodebit" - for the agent setting up autodebit with them; retried a few
    times within the code's life, then it expires unsent."""
    return codes.send_code(code_id, code, purpose)


# --- autodebit (contributions/autodebit.py) --------------------------------------------------
@shared_task(acks_late=True, name="contributions.plan_autodebit")
def plan_autodebit(day: str | None = None) -> dict[str, object]:
    """Twice a day (CELERY_BEAT_SCHEDULE): create the month's charges of every active mandate
    once the charging window opens, and queue the charges due today. A duplicated beat adds no
    charge (UNIQUE(participant, mandate, period)) and a charge queued twice is charged once."""
    return autodebit.plan(day=date.fromisoformat(day) if day else None).as_dict()


@shared_task(
    bind=True,
    acks_late=True,
    name="contributions.autodebit_charge_batch",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=10,
)
def autodebit_charge_batch(self: Task, ids: list[int], day: str | None = None) -> dict[str, int]:
    """Charge a batch (contributions/autodebit.py charge_batch); when a channel did not answer,
    the whole batch is tried again with backoff (the same keys; what was done is skipped).
    Idempotent: a charge done or held by another worker is skipped."""
    try:
        outcomes = autodebit.charge_batch(ids, today=date.fromisoformat(day) if day else None)
    except ChannelUnavailable:
        retries = self.request.retries or 0
        if retries >= int(settings.AUTODEBIT_TASK_RETRIES):
            raise  # the next planning run queues the charges again
        delay = float(settings.AUTODEBIT_RETRY_BACKOFF) * (2**retries)
        raise self.retry(countdown=min(delay, 3600.0)) from None
    return {k: n for k, n in outcomes.items() if n}


@shared_task(
    acks_late=True,
    name="contributions.autodebit_tell_agent",
    autoretry_for=(GatewayTemporaryError, OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def autodebit_tell_agent(charge_id: int) -> str:
    """An SMS to the participant's agent about a charge that failed on every try."""
    return autodebit.tell_agent(charge_id)


@shared_task(acks_late=True, name="contributions.compute_commissions")
def compute_commissions(month: str | None = None, current: bool = False) -> dict[str, int]:
    """Monthly, on the 1st (CELERY_BEAT_SCHEDULE): last month's draft Perisai statements
    (contributions/commissions/services.py; idempotent: a rerun recomputes the drafts only).
    Daily with `current`: this month's draft so far, which agents watch (it cannot be approved
    before the month ends and is computed again after). `month` YYYY-MM."""
    this_month = month_start(timezone.localdate())
    if month:
        first = commissions.parse_month(month)
    else:
        first = this_month if current else add_months(this_month, -1)
    result = commissions.compute_month(month=first)
    return {
        "agent_statements": result.agent_statements,
        "office_statements": result.office_statements,
        "lines": result.lines,
    }
