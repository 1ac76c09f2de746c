"""Extension points through which higher apps take part in registration without import cycles.

enrollment knows nothing of contributions; contributions registers here (in its AppConfig.ready):
- an income check (declared income must be a level of the rate schedule), and
- an after-registration step run inside the registration transaction (e.g. open the coverage row).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: no runtime import of the models
    from .models import Participant

IncomeCheck = Callable[[int, date], None]
AfterRegistration = Callable[["Participant"], None]
AfterRegistrationBulk = Callable[[list["Participant"]], None]

_income_checks: list[IncomeCheck] = []
_after_registration: list[AfterRegistration] = []
_after_registration_bulk: dict[AfterRegistration, AfterRegistrationBulk] = {}


def register_income_check(check: IncomeCheck) -> None:
    if check not in _income_checks:
        _income_checks.append(check)


def register_after_registration(
    step: AfterRegistration, bulk: AfterRegistrationBulk | None = None
) -> None:
    """`bulk`, if given, does what `step` does for many participants at once (bulk import)."""
    if step not in _after_registration:
        _after_registration.append(step)
    if bulk is not None:
        _after_registration_bulk[step] = bulk


def check_income(amount: int, on: date) -> None:
    for check in _income_checks:
        check(amount, on)


def after_registration(participant: Participant) -> None:
    for step in _after_registration:
        step(participant)


def after_registration_bulk(participants: list[Participant]) -> None:
    """The after-registration steps for many new participants: each step's bulk form if it has
    one, else the step once per participant."""
    if not participants:
        return
    for step in _after_registration:
        bulk = _after_registration_bulk.get(step)
        if bulk is not None:
            bulk(participants)
        else:
            for participant in participants:
                step(participant)


ParticipantPanel = Callable[["Participant"], dict[str, object]]
_participant_panels: list[ParticipantPanel] = []


def register_participant_panel(panel: ParticipantPanel) -> None:
    """A higher app adds facts (e.g. the monthly contribution) to the participant pages."""
    if panel not in _participant_panels:
        _participant_panels.append(panel)


def participant_panels(participant: Participant) -> dict[str, object]:
    out: dict[str, object] = {}
    templates: list[object] = []
    for panel in _participant_panels:
        facts = dict(panel(participant))
        found = facts.pop("panel_templates", [])
        templates.extend(found if isinstance(found, list | tuple) else [found])
        out.update(facts)
    out["panel_templates"] = templates
    return out


IncomeLevels = Callable[[date], list[int]]
_income_levels: list[IncomeLevels] = []


def register_income_levels(provider: IncomeLevels) -> None:
    """The declared-income levels a form offers (the rate schedule in force)."""
    if provider not in _income_levels:
        _income_levels.append(provider)


def income_levels(on: date) -> list[int]:
    for provider in _income_levels:
        return provider(on)
    return []
