"""The daily status refresh: set-based SQL, and the task through a real Celery worker."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from contributions.coverage import due_date
from contributions.models import Coverage
from contributions.rates import add_months
from contributions.services import refresh_coverage_statuses
from contributions.tasks import refresh_coverage_statuses as refresh_task
from tests.contributions.conftest import assert_ledger_consistent


def statuses() -> dict[int, str]:
    return dict(Coverage.objects.values_list("pk", "status"))


@pytest.mark.django_db
def test_refresh_moves_active_to_grace_to_lapsed_as_dates_pass(
    make_participant: Any, pay: Any
) -> None:
    month = timezone.localdate().replace(day=1)
    p = make_participant()
    never = make_participant()
    pay(p, months=1)  # paid through this month
    assert statuses()[p.pk] == "active"

    next_month = add_months(month, 1)
    result = refresh_coverage_statuses(as_of=next_month.replace(day=10))
    assert result == {"to_lapsed": 0, "to_grace": 1}
    assert statuses()[p.pk] == "grace"

    # the 4th unpaid month past its due date (the 15th or the next working day): lapsed, with
    # the day it lapsed
    due = due_date(add_months(month, 4))
    lapse_day = due + timedelta(days=1)
    refresh_coverage_statuses(as_of=due)
    assert statuses()[p.pk] == "grace"
    result = refresh_coverage_statuses(as_of=lapse_day)
    assert statuses()[p.pk] == "lapsed"
    assert Coverage.objects.get(pk=p.pk).lapsed_since == lapse_day
    # the participant who never paid (registered this month) lapsed a month earlier
    assert statuses()[never.pk] == "lapsed"
    never_lapsed = due_date(add_months(month, 3)) + timedelta(days=1)
    assert Coverage.objects.get(pk=never.pk).lapsed_since == never_lapsed
    # idempotent
    assert refresh_coverage_statuses(as_of=lapse_day) == {"to_lapsed": 0, "to_grace": 0}
    call_command("check_ledger", "--as-of", lapse_day.isoformat())
    assert_ledger_consistent()


@pytest.mark.django_db
def test_refresh_agrees_with_the_python_rule_on_edge_dates(make_participant: Any) -> None:
    from contributions.coverage import status_for

    start = date(2025, 11, 1)
    people = {}
    for offset in range(0, 6):  # paid through Nov 2025 ... Apr 2026
        p = make_participant(start_month=start)
        Coverage.objects.filter(pk=p.pk).update(
            paid_through=add_months(start, offset), status="active"
        )
        people[p.pk] = add_months(start, offset)
    # 15 March 2026 a Sunday (due the 16th); 18 May 2026 the due date after cuti bersama
    edges = (date(2026, 3, 16), date(2026, 3, 17), date(2026, 5, 18), date(2026, 5, 19))
    for day in (date(2026, 2, 28), date(2026, 3, 15), *edges, date(2026, 12, 31)):
        Coverage.objects.filter(pk__in=people).update(status="active", lapsed_since=None)
        refresh_coverage_statuses(as_of=day)
        for pk, paid in people.items():
            expected = status_for(paid_through=paid, start_month=start, as_of=day)
            assert statuses()[pk] == expected, (day, paid)


@pytest.mark.celery
def test_refresh_task_runs_in_a_real_celery_worker(tx_refdata: Any, celery_worker: Any) -> None:
    from enrollment.services import register_participant
    from tests.conftest import nik_for, registration_data

    p = register_participant(**registration_data(nik=nik_for(serial=777)))
    month = timezone.localdate().replace(day=1)
    Coverage.objects.filter(pk=p.pk).update(paid_through=month, status="active")
    as_of = add_months(month, 1).replace(day=2).isoformat()
    result = refresh_task.delay(as_of).get(timeout=30)
    assert result == {"to_lapsed": 0, "to_grace": 1, "months_paid_from_credit": 0}
    assert Coverage.objects.get(pk=p.pk).status == "grace"
