"""The checks of record_payment and post_sponsor_batch that run before any lock
(_validate_payment, _validate_batch): which error comes first, and what they hand on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.errors import BatchError, PaymentError
from contributions.services import (
    CheckedBatch,
    CheckedPayment,
    _validate_batch,
    _validate_payment,
    batch_digest,
)

GOOD: dict[str, Any] = {
    "amount": 16_800,
    "months": 1,
    "payer": "participant",
    "channel": "bank",
    "reference": "  TRX-1  ",
    "paid_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
    "kpj": None,
    "nik": None,
    "collected_by": None,
    "user": None,
}


class _Staff:
    pk = 7
    user = "the agent's user"


# Each row breaks its own check and every check after it: the error is the row's own code.
ORDER = [
    ({"amount": "16800"}, "amount_invalid"),
    ({"amount": True}, "amount_invalid"),
    ({"amount": 0}, "amount_not_positive"),
    ({"months": 13}, "months_out_of_range"),
    ({"months": 1.0}, "months_out_of_range"),
    ({"paid_at": "2026-01-05"}, "paid_at_invalid"),
    ({"paid_at": datetime(1999, 12, 31, tzinfo=UTC)}, "paid_at_too_old"),
    ({"channel": "pigeon"}, "channel_invalid"),
    ({"payer": "uncle"}, "payer_invalid"),
    ({"reference": "   "}, "reference_invalid"),
    ({"reference": "R" * 129}, "reference_invalid"),
]


@pytest.mark.parametrize("index", range(len(ORDER)), ids=[c for _b, c in ORDER])
def test_the_first_broken_check_answers(index: int) -> None:
    broken, code = ORDER[index]
    bad = dict(broken)
    for later, _code in ORDER[index + 1 :]:  # every later check is broken too
        for key, value in later.items():
            bad.setdefault(key, value)
    with pytest.raises(PaymentError) as caught:
        _validate_payment(**{**GOOD, "participant": object(), **bad})
    assert caught.value.code == code


def test_checked_values_are_normalised() -> None:
    participant = object()
    checked = _validate_payment(**{**GOOD, "participant": participant, "collected_by": _Staff()})
    assert isinstance(checked, CheckedPayment)
    assert checked.participant is participant
    assert checked.reference == "TRX-1"
    assert timezone.is_aware(checked.paid_at)
    assert checked.user == "the agent's user"  # the collecting agent's user, when none is given
    with pytest.raises(AttributeError):
        checked.amount = 1  # type: ignore[misc]  # frozen


def test_an_explicit_user_is_kept() -> None:
    args = {**GOOD, "participant": object(), "collected_by": _Staff(), "user": "back office"}
    assert _validate_payment(**args).user == "back office"


@pytest.mark.django_db
def test_the_participant_is_looked_up_last(refdata: Any) -> None:
    with pytest.raises(PaymentError) as caught:
        _validate_payment(**{**GOOD, "participant": None, "kpj": "00000000000"})
    assert caught.value.code == "participant_unknown"
    with pytest.raises(PaymentError) as caught:  # a broken field is answered before the look-up
        _validate_payment(**{**GOOD, "participant": None, "kpj": "00000000000", "payer": "x"})
    assert caught.value.code == "payer_invalid"


# --- sponsor batches ---------------------------------------------------------------------------
ROWS = [("12345678901", 1)]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"reference": " ", "rows": [], "paid_at": "x"}, "reference_invalid"),
        ({"reference": "R" * 65, "rows": [], "paid_at": "x"}, "reference_invalid"),
        ({"reference": "B-1", "rows": [], "paid_at": "x"}, "empty_batch"),
        ({"reference": "B-1", "rows": ROWS, "paid_at": "x"}, "paid_at_invalid"),
        (
            {"reference": "B-1", "rows": ROWS, "paid_at": datetime(1990, 1, 1, tzinfo=UTC)},
            "paid_at_too_old",
        ),
    ],
)
def test_batch_checks_in_order(args: dict[str, Any], code: str) -> None:
    with pytest.raises(BatchError) as caught:
        _validate_batch(total_amount=None, **args)
    assert caught.value.code == code and caught.value.rows == []


def test_checked_batch_carries_the_digest() -> None:
    paid_at = timezone.now() - timedelta(hours=1)
    checked = _validate_batch(reference=" B-1 ", rows=ROWS, paid_at=paid_at, total_amount=16_800)
    assert isinstance(checked, CheckedBatch)
    assert (checked.reference, checked.rows, checked.total_amount) == ("B-1", ROWS, 16_800)
    assert checked.digest == batch_digest(
        reference="B-1", rows=ROWS, paid_at=paid_at, total_amount=16_800
    )
    # the window (future, too old) is checked later, under the lock: a replay comes first
    future = timezone.now() + timedelta(days=3)
    assert _validate_batch(reference="B-1", rows=ROWS, paid_at=future, total_amount=None)
