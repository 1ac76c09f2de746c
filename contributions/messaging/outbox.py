"""The transactional outbox: write paths queue Celery tasks as rows (OutboxMessage) in their own
transaction, so a task is queued exactly when the change it belongs to commits -- and a Redis
outage cannot lose it or fail the request. The relay publishes the rows to the broker.

Guarantees:
- `enqueue` never talks to Redis (the request path works with Redis down);
- `relay` publishes rows in id order under `SELECT ... FOR UPDATE SKIP LOCKED`, so relays
  running at once (beat on two hosts, the command by hand) never publish the same row together;
- a row is marked published in the transaction that holds its lock, after the broker accepted
  it; a crash between the two publishes it again on the next run: at-least-once, under the
  Celery task id `outbox-<id>-<created, µs>` (`task_id`). Every task sent through here must be
  idempotent (they are: see contributions/messaging/notifications.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from bpjsportal.core import redis_status, request_id

from ..models import OutboxMessage

log = logging.getLogger(__name__)

PUBLISH_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    redis.exceptions.RedisError,
    OSError,
)


def enqueue(task: str, *args: Any, **kwargs: Any) -> OutboxMessage:
    """Queue `task(*args, **kwargs)` to be published when the current transaction commits
    (JSON-serialisable arguments only). Rolled back with it if the transaction fails."""
    queued = message(task, *args, **kwargs)
    queued.save(force_insert=True)
    return queued


def message(task: str, *args: Any, **kwargs: Any) -> OutboxMessage:
    """The unsaved outbox row of `enqueue` (a write path that inserts it in a statement of its
    own: contributions/messaging/notifications.py)."""
    rid = request_id.current()  # the request's id travels with the task (docs/operations.md)
    if rid:
        kwargs = {**kwargs, request_id.OUTBOX_KEY: rid}
    return OutboxMessage(task=task, args=list(args), kwargs=kwargs)


@dataclass
class RelayResult:
    published: int = 0
    pending: int = 0
    broker_down: bool = False
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def task_id(message: OutboxMessage) -> str:
    """The row's Celery task id: the same at every publication of the row, and never the id of
    another row's task in the result store. That store outlives the table's sequence (a restored
    or re-created database, several databases on one Redis, as in the tests) and Celery reads a
    SUCCESS stored under a task id as "this task already ran": a pool process killed mid-task
    whose id matched an old result was acknowledged instead of requeued, so `outbox-<id>` alone
    is not enough - the row's creation time (microseconds) makes the id unique."""
    created = int(message.created_at.timestamp() * 1_000_000)
    return f"outbox-{message.pk}-{created}"


def _publish(message: OutboxMessage) -> None:
    # current_app: the project's Celery app (bpjsportal/celery.py), without importing the
    # project wiring from a domain app.
    kwargs = dict(message.kwargs)
    rid = request_id.accepted(kwargs.pop(request_id.OUTBOX_KEY, None))
    current_app.send_task(
        message.task,
        args=message.args,
        kwargs=kwargs,
        task_id=task_id(message),
        retry=False,  # the next relay run is the retry
        headers={request_id.TASK_HEADER: rid} if rid else None,
    )


def relay(*, limit: int | None = None, batch: int | None = None) -> RelayResult:
    """Publish unpublished rows (oldest first, at most `limit`), then delete published rows
    older than OUTBOX_KEEP_DAYS. Stops at the first broker error: the rest wait for the next
    run. Safe to run concurrently and repeatedly."""
    result = RelayResult()
    batch = batch or int(settings.OUTBOX_RELAY_BATCH)
    limit = limit if limit is not None else int(settings.OUTBOX_RELAY_MAX_PER_RUN)
    broker = redis_status.broker_url()
    if not redis_status.probe(broker):  # one short ping instead of a slow failed publish
        result.broker_down = True
    while not result.broker_down and result.published < limit:
        with transaction.atomic():
            rows = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .order_by("id")[: min(batch, limit - result.published)]
            )
            if not rows:
                break
            done: list[int] = []
            for message in rows:
                try:
                    _publish(message)
                except PUBLISH_ERRORS as exc:
                    redis_status.mark_down(broker, f"outbox relay: {exc!r}")
                    OutboxMessage.objects.filter(pk=message.pk).update(
                        attempts=message.attempts + 1, last_error=repr(exc)[:255]
                    )
                    result.broker_down = True
                    break
                done.append(message.pk)
            if done:
                OutboxMessage.objects.filter(pk__in=done).update(
                    published_at=timezone.now(), attempts=F("attempts") + 1
                )
            result.published += len(done)
        if len(rows) < batch:
            break
    result.pending = OutboxMessage.objects.filter(published_at__isnull=True).count()
    keep = timezone.now() - timedelta(days=int(settings.OUTBOX_KEEP_DAYS))
    result.deleted, _by_model = OutboxMessage.objects.filter(published_at__lt=keep).delete()
    if result.published or result.broker_down:
        log.info("outbox relay: %s", result.as_dict())
    return result


def pending_count() -> int:
    return OutboxMessage.objects.filter(published_at__isnull=True).count()
