"""Celery tasks of contributions: thin, idempotent, safe to retry."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from . import services


@shared_task(acks_late=True, name="contributions.refresh_coverage_statuses")
def refresh_coverage_statuses(as_of: str | None = None) -> dict[str, int]:
    """Daily (CELERY_BEAT_SCHEDULE): move coverage statuses as dates pass. `as_of` ISO date."""
    return services.refresh_coverage_statuses(as_of=date.fromisoformat(as_of) if as_of else None)
