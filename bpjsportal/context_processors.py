"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from bpjsportal.core import redis_status


def service_status(request: HttpRequest) -> dict[str, bool]:
    """`queue_unavailable`: the Celery broker (Redis) does not answer, so reminders and
    notifications wait in the outbox; base.html shows a banner. A remembered answer, re-probed
    at most every REDIS_HEALTH_TTL seconds with a short timeout
    (bpjsportal/core/redis_status.py)."""
    return {"queue_unavailable": not redis_status.queue_available()}
