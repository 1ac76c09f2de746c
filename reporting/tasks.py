"""Celery tasks of reporting: thin, idempotent (a day is rebuilt whole), safe to retry."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from . import rollups, warming

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, name="reporting.build_rollups")
def build_rollups(as_of: str | None = None) -> dict[str, float]:
    """Nightly (CELERY_BEAT_SCHEDULE): rebuild yesterday (final) and today."""
    today = date.fromisoformat(as_of) if as_of else timezone.localdate()
    result = rollups.rebuild_rollups(start=today - timedelta(days=1), end=today)
    _warm_later()
    return {"days": result.days, "rows": result.rows, "seconds": round(result.seconds, 3)}


@shared_task(acks_late=True, name="reporting.refresh_rollups_today")
def refresh_rollups_today() -> dict[str, float]:
    """During the day (every 15 minutes): today's rows again, so the dashboard keeps up."""
    result = rollups.refresh_today()
    _warm_later()
    return {"days": result.days, "rows": result.rows, "seconds": round(result.seconds, 3)}


@shared_task(acks_late=True, name="reporting.warm_dashboard")
def warm_dashboard() -> int:
    """After each build or refresh: the national and provincial pages' figures into the cache
    (reporting/warming.py), so the first reader of the new rollups does not compute them."""
    return warming.warm()


def _warm_later() -> None:
    try:
        warm_dashboard.delay()
    except Exception:  # the broker is down: the first reader computes them
        logger.warning("dashboard warm-up not queued", exc_info=True)
