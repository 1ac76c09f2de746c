"""Celery tasks of reporting: thin, idempotent (a day is rebuilt whole), safe to retry."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from . import rollups


@shared_task(acks_late=True, name="reporting.build_rollups")
def build_rollups(as_of: str | None = None) -> dict[str, float]:
    """Nightly (CELERY_BEAT_SCHEDULE): rebuild yesterday (final) and today."""
    today = date.fromisoformat(as_of) if as_of else timezone.localdate()
    result = rollups.rebuild_rollups(start=today - timedelta(days=1), end=today)
    return {"days": result.days, "rows": result.rows, "seconds": round(result.seconds, 3)}


@shared_task(acks_late=True, name="reporting.refresh_rollups_today")
def refresh_rollups_today() -> dict[str, float]:
    """During the day (every 15 minutes): today's rows again, so the dashboard keeps up."""
    result = rollups.refresh_today()
    return {"days": result.days, "rows": result.rows, "seconds": round(result.seconds, 3)}
