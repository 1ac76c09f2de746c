"""The beat task on a real Celery worker builds yesterday's and today's rollups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from reporting.models import RollupDay
from reporting.tasks import build_rollups

pytestmark = pytest.mark.celery


def test_build_rollups_task_on_a_real_worker(
    tx_refdata: Any, celery_worker: Any, register: Any
) -> None:
    register()
    today = timezone.localdate()
    RollupDay.objects.all().delete()
    result = build_rollups.delay(today.isoformat()).get(timeout=120)
    assert result["rows"] >= 1
    assert RollupDay.objects.filter(day=today).exists()
    assert RollupDay.objects.filter(day=today - timedelta(days=1)).exists()
