"""The serializer-free sync page (enrollment.api.serializers.participant_row) gives exactly what
ParticipantSerializer gives, field by field, for every kind of participant, masked or not."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from enrollment.api.scopes import decorate_participants
from enrollment.api.serializers import (
    ParticipantSerializer,
    participant_row,
    participant_values,
)
from enrollment.models import Participant
from enrollment.pii import begin_disclosures, end_disclosures
from tests.conftest import nik_for


@pytest.fixture
def varied(register: Any, partners: dict[str, Any]) -> list[int]:
    from django.utils import timezone

    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment

    plain = register(nik=nik_for(serial=11))
    rich = register(
        nik=nik_for(date(1991, 7, 9), "F", 12),
        birth_date=date(1991, 7, 9),
        sex="F",
        jht=True,
        email="sari@example.id",
        channel="partner",
        partner=partners["combofit"],
        consent_reminders=True,
        language="en",
    )
    paid = register(nik=nik_for(serial=13), occupation="nelayan")
    due = quote_payment(
        paid, Coverage.objects.get(pk=paid.pk), months=2, as_of=timezone.localdate()
    )
    record_payment(
        participant=paid, months=2, amount=due.amount, payer="participant", channel="bank",
        reference="FAST-1", paid_at=timezone.now(),
    )  # fmt: skip
    return [plain.pk, rich.pk, paid.pk]


@pytest.mark.parametrize("mask", [True, False])
def test_fast_rows_equal_the_serializer(varied: list[int], mask: bool) -> None:
    qs = decorate_participants(
        Participant.objects.filter(pk__in=varied).select_related("partner")
    ).order_by("id")
    want = ParticipantSerializer(qs, many=True, context={"mask_nik": mask}).data
    token = begin_disclosures()
    got = [participant_row(v, mask=mask) for v in participant_values(qs)]
    disclosed = end_disclosures(token, who="test", where="test")
    assert [dict(row) for row in want] == got
    assert {row["status"] for row in got} >= {"active"}
    assert any(row["partner"] == "COMBOFIT" and "JHT" in row["programmes"] for row in got)
    assert any(row["paid_through"] for row in got)
    # the full NIK is logged as disclosed exactly when it is shown
    assert disclosed == (0 if mask else len(varied))
