"""Targets as data: the yearly national target, month-end milestones (default a straight path
from the year's starting point) and optional quotas per province, occupation or partner.

Every save goes through `save_target`, which appends a TargetVersion row (who, what, when)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from .cache import bump
from .models import Target, TargetBreakdown, TargetMilestone, TargetVersion

# Seeds: BPJS Ketenagakerjaan's goal of 10 million active BPU participants by the end of 2024
# (press, 2024); 9.9 M active were reported at the end of 2024 and 20 M informal workers is the
# reported goal for 2026. 2025 is an example in between. Admins change them in the admin or form.
SEED_TARGETS: dict[int, dict[str, Any]] = {
    2024: {
        "active_target": 10_000_000,
        "starting_point": 9_190_000,
        "note": "10 million active BPU participants by the end of 2024",
    },
    2025: {"active_target": 12_000_000, "starting_point": None, "note": "example"},
    2026: {
        "active_target": 20_000_000,
        "starting_point": None,
        "note": "example: 20 million informal workers by 2026 (reported goal)",
    },
}


def target_state(target: Target) -> dict[str, Any]:
    return {
        "year": target.year,
        "active_target": target.active_target,
        "starting_point": target.starting_point,
        "note": target.note,
        "milestones": {str(m.month): m.active for m in target.milestones.order_by("month")},
        "breakdowns": [
            {"dimension": b.dimension, "key": b.key, "active_target": b.active_target}
            for b in target.breakdowns.order_by("dimension", "key")
        ],
    }


def record_version(target: Target, *, user: AbstractBaseUser | None, source: str) -> TargetVersion:
    """Append the target's current state as the next version (call inside the save's
    transaction; the unique (year, version) constraint guards concurrent saves)."""
    last = TargetVersion.objects.filter(year=target.year).aggregate(v=Max("version"))["v"] or 0
    return TargetVersion.objects.create(
        year=target.year,
        version=last + 1,
        state=target_state(target),
        changed_by=user if user is not None and user.is_authenticated else None,  # type: ignore[misc]
        source=source,
    )


@transaction.atomic
def save_target(
    *,
    year: int,
    active_target: int,
    starting_point: int | None = None,
    note: str = "",
    milestones: Mapping[int, int] | None = None,
    breakdowns: list[tuple[str, str, int]] | None = None,
    user: AbstractBaseUser | None = None,
    source: str = "form",
) -> Target:
    """Create or replace a year's target (milestones/breakdowns replaced when given, kept when
    None) and append a version. Raises ValueError on a non-positive target or a bad month."""
    if active_target <= 0:
        raise ValueError("active_target must be positive")
    target, _created = Target.objects.select_for_update().get_or_create(
        year=year, defaults={"active_target": active_target}
    )
    target.active_target = active_target
    target.starting_point = starting_point
    target.note = note
    target.updated_by = user if user is not None and user.is_authenticated else None  # type: ignore[assignment]
    target.save()
    if milestones is not None:
        if any(not 1 <= m <= 12 for m in milestones):
            raise ValueError("milestone months are 1-12")
        target.milestones.all().delete()
        TargetMilestone.objects.bulk_create(
            [TargetMilestone(target=target, month=m, active=v) for m, v in milestones.items()]
        )
    if breakdowns is not None:
        target.breakdowns.all().delete()
        TargetBreakdown.objects.bulk_create(
            [
                TargetBreakdown(target=target, dimension=d, key=k, active_target=v)
                for d, k, v in breakdowns
            ]
        )
    record_version(target, user=user, source=source)
    return target


def seed_targets() -> list[tuple[str, int]]:
    """Idempotent: create the seed years that do not exist; never overwrite an admin's edit."""
    created = 0
    for year, values in SEED_TARGETS.items():
        if not Target.objects.filter(year=year).exists():
            save_target(year=year, source="seed", **values)
            created += 1
    return [("reporting targets", created)]


def on_reference_data_loading(**_kwargs: Any) -> list[tuple[str, int]]:
    bump()  # regions and occupations were loaded by COPY (no signal): new labels
    return seed_targets()


def target_path(
    *, active_target: int, starting_point: int, milestones: Mapping[int, int]
) -> list[int]:
    """Month-end targets for months 1..12: a milestone where given, else the straight line
    from the start (1 January) to the year-end target, rounded to whole participants.
    December is always the year's target."""
    path = []
    for month in range(1, 13):
        if month in milestones:
            path.append(milestones[month])
        else:
            path.append(round(starting_point + (active_target - starting_point) * month / 12))
    path[11] = active_target
    return path
