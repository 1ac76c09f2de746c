"""Seed targets (idempotent, never overwriting an edit), versions, the beat schedule."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command

from reporting.models import Target, TargetVersion
from reporting.targets import save_target, seed_targets


def test_reference_data_seeds_2024_at_ten_million(db: Any) -> None:
    call_command("load_reference_data", verbosity=0)
    assert Target.objects.get(year=2024).active_target == 10_000_000
    assert set(Target.objects.values_list("year", flat=True)) >= {2024, 2025, 2026}


def test_seeding_twice_changes_nothing_and_keeps_an_edit(db: Any) -> None:
    seed_targets()
    save_target(year=2025, active_target=11_111_111, source="form")
    versions = TargetVersion.objects.count()
    assert seed_targets() == [("reporting targets", 0)]
    assert Target.objects.get(year=2025).active_target == 11_111_111
    assert TargetVersion.objects.count() == versions


def test_every_save_appends_a_version(db: Any) -> None:
    save_target(year=2030, active_target=5, source="seed")
    save_target(year=2030, active_target=6, milestones={1: 1}, source="form")
    assert list(
        TargetVersion.objects.filter(year=2030)
        .order_by("version")
        .values_list("version", "state__active_target", "source")
    ) == [(1, 5, "seed"), (2, 6, "form")]


def test_beat_schedule_builds_and_refreshes_rollups() -> None:
    tasks = {v["task"] for v in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"reporting.build_rollups", "reporting.refresh_rollups_today"} <= tasks
