"""The beat task on a real Celery worker builds yesterday's and today's rollups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from reporting.models import RollupDay
from reporting.tasks import build_rollups

pytestmark = pytest.mark.celery


@pytest.mark.two_clocks  # the worker's "today" is the test's, in Jakarta, at either clock
def test_build_rollups_task_on_a_real_worker(
    tx_refdata: Any, celery_worker: Any, register: Any
) -> None:
    register()
    today = timezone.localdate()
    RollupDay.objects.all().delete()
    result = build_rollups.delay().get(timeout=120)  # as beat sends it: the worker's today
    assert result["rows"] >= 1
    assert RollupDay.objects.filter(day=today).exists()
    assert RollupDay.objects.filter(day=today - timedelta(days=1)).exists()
