"""Benchmark-only Celery tasks, loaded by the bench's own worker (bench/bench_settings.py,
CELERY_IMPORTS) and never by the product's."""

from celery import shared_task


@shared_task(acks_late=True, name="bench.noop")
def noop(ids: list[int], now: str | None = None) -> int:
    """Does nothing: the baseline task rate for bench/bench_reminders.py (same arguments as
    send_reminder_batch, so the broker carries the same message size)."""
    return len(ids)
