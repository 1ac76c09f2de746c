"""Fixtures of the reporting tests: participants registered and paying on chosen past dates."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import make_staff, nik_for

_serial = itertools.count(500)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """`hour`:`minute` local on `day`, but never later than now: between 00:00 and that hour
    local time (e.g. a run at 00:30 WIB) today's events happen "now", still on `day`."""
    return min(timezone.make_aware(datetime.combine(day, time(hour, minute))), timezone.now())


@pytest.fixture
def participant_on(register: Any) -> Any:
    """A participant registered on `day` (created_at and the coverage start month back-dated)."""
    from contributions.models import Coverage
    from enrollment.models import Participant

    def _make(day: date, **overrides: Any) -> Any:
        overrides.setdefault("nik", nik_for(serial=next(_serial)))
        p = register(**overrides)
        Participant.objects.filter(pk=p.pk).update(created_at=at(day, 9))
        Coverage.objects.filter(pk=p.pk).update(start_month=day.replace(day=1))
        p.refresh_from_db()
        return p

    return _make


def months_to_activate(participant: Any, day: date) -> int:
    """Months a payment on `day` must cover to make `participant` active: arrears plus the
    current month (early in a month, a worker registered last month owes two)."""
    from contributions.coverage import months_due_now
    from contributions.models import Coverage

    cov = Coverage.objects.get(pk=participant.pk)
    return max(
        1, months_due_now(paid_through=cov.paid_through, start_month=cov.start_month, as_of=day)
    )


@pytest.fixture
def pay_on() -> Any:
    """Pay the quoted amount for `months` at `day` (10:00 local unless `hour` is given)."""
    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment

    refs = itertools.count(1)

    def _pay(participant: Any, day: date, months: int = 1, hour: int = 10, **kw: Any) -> Any:
        cov = Coverage.objects.get(pk=participant.pk)
        due = quote_payment(participant, cov, months=months, as_of=day)
        payment, _created = record_payment(
            participant=participant,
            amount=due.amount,
            months=months,
            payer="participant",
            channel=kw.pop("channel", "bank"),
            reference=f"R-{participant.pk}-{next(refs)}",
            paid_at=at(day, hour, kw.pop("minute", 0)),
            backdated=kw.pop("backdated", True),  # history: older than PAYMENT_MAX_AGE_DAYS
            **kw,
        )
        return payment

    return _pay


@pytest.fixture
def regional_admin(branches: dict[str, Any]) -> Any:
    """A regional administrator of Jawa Timur (35)."""
    from enrollment.models import StaffProfile

    user = make_staff("regio_jatim", "supervisor", branches["SBY"])
    StaffProfile.objects.filter(user=user).update(
        role="regional_admin", province_id="35", branch=None
    )
    user.refresh_from_db()
    return user
