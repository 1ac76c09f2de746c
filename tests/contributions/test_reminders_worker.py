"""Payment reminders through real Celery workers on the real Redis (not eager): planning and
fan-out via tasks, retries with backoff on a failing gateway, duplicate beats, a lost task
(broker purged) and a worker killed with SIGKILL mid-batch -- nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.coverage import due_date
from contributions.messaging import reminders
from contributions.models import Reminder
from contributions.rates import add_months
from contributions.tasks import dispatch_reminders, plan_reminders, send_reminder_batch
from tests.conftest import start_worker

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

NEXT = add_months(timezone.localdate().replace(day=1), 1)


def plan_day() -> date:
    """due_soon's day for NEXT: three days before its due date (the 15th, or the next working
    day after a holiday or weekend: coverage.due_date reads the calendar, so it is a call)."""
    return due_date(NEXT) - timedelta(days=3)


def noon() -> datetime:
    day = plan_day()
    return datetime(day.year, day.month, day.day, 5, tzinfo=UTC)  # 12:00 WIB


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def _start(**env: str) -> subprocess.Popen[bytes]:
        proc, _node = start_worker(**env)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        stop(proc)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def sent_count() -> int:
    return Reminder.objects.filter(state="sent").count()


def assert_exactly_once(gateway: Any, n: int) -> None:
    """n reminders, all sent; the gateway accepted each reference once, with our message id."""
    rows = list(Reminder.objects.values_list("id", "state", "gateway_message_id"))
    assert len(rows) == n
    assert {state for _id, state, _mid in rows} == {"sent"}
    accepted = {m["reference"]: m["id"] for m in gateway.state.messages}
    assert len(gateway.state.messages) == n == len(accepted)
    assert accepted == {f"bpu-rem-{pk}": mid for pk, _state, mid in rows}


@pytest.fixture
def people(tx_refdata: Any, reminded: Any) -> Callable[[int], list[Any]]:
    reminders.seed_reminder_rules()

    def _make(n: int) -> list[Any]:
        zones = ("WIB", "WITA", "WIT")
        return [reminded(zones[i % 3]) for i in range(n)]

    return _make


def test_beat_plan_twice_fan_out_and_retry_through_a_real_worker(
    people: Any, gateway: Any, workers: Any
) -> None:
    people(24)
    # one gateway request per message: a failed request retries exactly one reminder
    workers(REMINDER_BATCH_SIZE="5", REMINDER_GATEWAY_BATCH="1")
    first = plan_reminders.delay(plan_day().isoformat(), False).get(timeout=30)
    second = plan_reminders.delay(plan_day().isoformat(), False).get(timeout=30)  # beat twice
    assert first["due_soon"] == 24 and sum(second.values()) == 0
    gateway.state.mode, gateway.state.fail_next = "error500", 2  # two batches must retry
    assert dispatch_reminders.delay(noon().isoformat()).get(timeout=30) == 24
    wait_for(lambda: sent_count() == 24, timeout=60)
    assert dispatch_reminders.delay(noon().isoformat()).get(timeout=30) == 0
    assert_exactly_once(gateway, 24)
    assert gateway.state.stats()["failures"] == 2
    retried = Reminder.objects.filter(attempts=2).count()
    assert retried == 2  # the first reminder of each failed batch was tried twice
    figures = reminders.day_figures(plan_day())["all"]
    assert figures["planned"] == 24 and figures["sent"] == 24 and figures["queued"] == 0


def test_lost_tasks_are_dispatched_again_after_the_lease(
    people: Any, gateway: Any, workers: Any, settings: Any
) -> None:
    """Redis restarted mid-run / tasks lost: the reminders stay queued and come back."""
    from bpjsportal.celery import app

    people(12)
    reminders.plan_reminders(day=plan_day())
    settings.REMINDER_BATCH_SIZE = 4
    dispatched = reminders.dispatch_due_reminders(
        enqueue=lambda ids: send_reminder_batch.delay(ids, noon().isoformat()), now=noon()
    )
    assert dispatched == 12
    with app.connection_for_write() as conn:  # the broker loses every waiting task
        conn.default_channel.queue_purge(os.environ["CELERY_QUEUE"])
    workers()
    time.sleep(1)
    assert sent_count() == 0
    later = noon() + timedelta(seconds=settings.REMINDER_DISPATCH_LEASE + 1)
    assert dispatch_reminders.delay(later.isoformat()).get(timeout=30) == 12
    wait_for(lambda: sent_count() == 12, timeout=60)
    assert_exactly_once(gateway, 12)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    people: Any, gateway: Any, workers: Any, settings: Any
) -> None:
    people(40)
    reminders.plan_reminders(day=plan_day())
    settings.REMINDER_BATCH_SIZE = 10
    settings.REMINDER_DISPATCH_LEASE = 5
    gateway.state.delay = 0.05  # per request: a task of 10 takes ~0.25 s, time to kill inside
    first = workers(REMINDER_GATEWAY_BATCH="2")  # /messages/batch, 2 messages a request

    def enqueue(ids: list[int]) -> None:
        send_reminder_batch.delay(ids, noon().isoformat())

    assert reminders.dispatch_due_reminders(enqueue=enqueue, now=noon()) == 40
    wait_for(lambda: len(gateway.state.messages) >= 14, timeout=30)  # inside the 2nd batch
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = len(gateway.state.messages)
    assert killed_at < 40
    workers(REMINDER_GATEWAY_BATCH="2")
    # the killed batch's transaction was rolled back: its reminders are still queued, and its
    # task is unacknowledged in Redis until the visibility timeout. The dispatcher's lease
    # hands them out again (beat runs it every minute; here once, past the lease).
    wait_for(lambda: Reminder.objects.filter(state="queued", dispatched_at=None).count() == 0)
    later = noon() + timedelta(seconds=6)

    def all_sent() -> bool:
        reminders.dispatch_due_reminders(enqueue=enqueue, now=later)
        return sent_count() == 40

    wait_for(all_sent, timeout=90)
    assert_exactly_once(gateway, 40)
    # the messages of the killed batch that reached the gateway were re-sent with the same
    # reference and answered with the same id: de-duplicated, not delivered twice
    assert gateway.state.stats()["duplicates"] >= 1
