"""Sponsor batches: all rows or none, a per-row error report, idempotent by reference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from contributions.errors import BatchError
from contributions.models import Coverage, LedgerEntry, Payment, SponsorBatch
from contributions.services import post_sponsor_batch
from enrollment.models import Partner
from tests.contributions.conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def sponsor(refdata: Any) -> Partner:
    return Partner.objects.create(code="GNL", name="GN Lingkaran", kind="sponsor")


@pytest.fixture
def people(make_participant: Any, sponsor: Partner) -> list[Any]:
    """Workers the sponsor registered (a partner pays for those without anyone's consent)."""
    return [make_participant(partner=sponsor) for _ in range(3)]


def test_batch_posts_one_payment_per_row(sponsor: Partner, people: list[Any]) -> None:
    rows = [(p.kpj_number, 3) for p in people[:2]] + [(people[2].nik, 1)]
    batch, created = post_sponsor_batch(
        sponsor=sponsor, reference="GNL-2026-01", rows=rows, paid_at=timezone.now()
    )
    assert created and batch.row_count == 3 and batch.participant_months == 7
    assert Payment.objects.filter(batch=batch).count() == 3
    assert batch.total_amount == sum(Payment.objects.values_list("amount", flat=True))
    assert set(Coverage.objects.values_list("status", flat=True)) == {"active"}
    assert Payment.objects.filter(payer="sponsor", sponsor=sponsor).count() == 3
    assert_ledger_consistent()


def test_batch_with_bad_rows_posts_nothing_and_lists_every_bad_row(
    sponsor: Partner, people: list[Any]
) -> None:
    rows = [
        (people[0].kpj_number, 1),
        ("99999999999", 1),  # unknown KPJ
        (people[1].kpj_number, 13),  # months out of range
        (people[0].kpj_number, 2),  # same participant twice
        (people[2].kpj_number, 2),
    ]
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(sponsor=sponsor, reference="BAD", rows=rows, paid_at=timezone.now())
    assert err.value.code == "batch_invalid"
    assert [(r.row, r.code) for r in err.value.rows] == [
        (2, "participant_unknown"),
        (3, "months_out_of_range"),
        (4, "duplicate_row"),
    ]
    assert not SponsorBatch.objects.exists() and not Payment.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert set(Coverage.objects.values_list("status", flat=True)) == {"grace"}
    assert_ledger_consistent()


def test_batch_total_must_match_the_rows(sponsor: Partner, people: list[Any]) -> None:
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(
            sponsor=sponsor,
            reference="TOT",
            rows=[(p.kpj_number, 1) for p in people],
            paid_at=timezone.now(),
            total_amount=1,
        )
    assert err.value.code == "amount_mismatch"
    assert not Payment.objects.exists()
    assert_ledger_consistent()


def test_batch_reposted_is_the_same_batch(sponsor: Partner, people: list[Any]) -> None:
    rows = [(p.kpj_number, 2) for p in people]
    paid_at = timezone.now()
    first, _ = post_sponsor_batch(sponsor=sponsor, reference="R1", rows=rows, paid_at=paid_at)
    same_instant = paid_at.astimezone(ZoneInfo("Asia/Jayapura"))  # another zone, same moment
    again, created = post_sponsor_batch(
        sponsor=sponsor, reference="R1", rows=list(rows), paid_at=same_instant
    )
    assert not created and again.pk == first.pk
    assert Payment.objects.count() == 3
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(sponsor=sponsor, reference="R1", rows=rows[:1], paid_at=paid_at)
    assert err.value.code == "reference_conflict"
    assert_ledger_consistent()


def test_a_replay_with_other_rows_of_the_same_count_and_total_is_a_conflict(
    sponsor: Partner, people: list[Any], make_participant: Any
) -> None:
    """The probe: the same reference, as many rows and the same total, but another participant
    got the first batch back (200) instead of a 409."""
    paid_at = timezone.now()
    rows = [(people[0].kpj_number, 1), (people[1].kpj_number, 1)]
    first, _ = post_sponsor_batch(sponsor=sponsor, reference="R2", rows=rows, paid_at=paid_at)
    swapped = [(people[0].kpj_number, 1), (people[2].kpj_number, 1)]  # same income: same total
    for other in (
        {"rows": swapped},
        {"rows": list(reversed(rows))},
        {"rows": rows, "paid_at": paid_at - timedelta(minutes=1)},
        {"rows": rows, "total_amount": first.total_amount},
    ):
        with pytest.raises(BatchError) as err:
            post_sponsor_batch(
                **{"sponsor": sponsor, "reference": "R2", "paid_at": paid_at, **other}
            )
        assert err.value.code == "reference_conflict", other
    assert Payment.objects.count() == 2 and SponsorBatch.objects.count() == 1
    assert_ledger_consistent()


def test_empty_and_future_batches_are_refused(sponsor: Partner, people: list[Any]) -> None:
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(sponsor=sponsor, reference="E", rows=[], paid_at=timezone.now())
    assert err.value.code == "empty_batch"
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(
            sponsor=sponsor,
            reference="F",
            rows=[(people[0].kpj_number, 1)],
            paid_at=timezone.now() + timedelta(days=2),
        )
    assert err.value.code == "paid_at_future"


# Rows looked up by KPJ only: placeholder NIK columns (a digest-shaped hash, a token that
# names no key) are enough here; real ones come from enrollment.pii.nik_columns.
BULK_PARTICIPANTS = """
INSERT INTO enrollment_participant
    (nik_digest, nik_encrypted, kpj_number, full_name, birth_date, sex, phone, email, language,
     village_id, province_id, regency_id, address, occupation_id, declared_income, jht, channel,
     consent_data, consent_reminders, created_at, updated_at, partner_id)
SELECT sha256(g::text::bytea), 'placeholder:' || g, lpad((30000000000 + g)::text, 11, '0'),
       'Pekerja ' || g, DATE '1990-01-01', 'M', '+6281200000000', '', 'id', '32.73.05.1001',
       '32', '32.73', 'Jl. Uji', 'petani', 1000000, false, 'partner', true, false, %s, %s, %s
FROM generate_series(1, 10000) AS g
"""


def test_ten_thousand_row_batch_is_all_or_nothing(sponsor: Partner) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        # registered by the sponsor; coverage rows are opened by the batch itself
        # registered "now" on the portal's clock (Python's), as register_participant stamps it
        cur.execute(BULK_PARTICIPANTS, [timezone.now(), timezone.now(), sponsor.pk])
    kpjs = [f"{30_000_000_000 + g:011d}" for g in range(1, 10_001)]
    bad = [(k, 1) for k in kpjs[:-1]] + [("39999999999", 1)]  # only the last row is wrong
    with pytest.raises(BatchError) as err:
        post_sponsor_batch(sponsor=sponsor, reference="BIG", rows=bad, paid_at=timezone.now())
    assert [(r.row, r.code) for r in err.value.rows] == [(10_000, "participant_unknown")]
    assert not Payment.objects.exists() and not LedgerEntry.objects.exists()

    batch, _ = post_sponsor_batch(
        sponsor=sponsor, reference="BIG", rows=[(k, 1) for k in kpjs], paid_at=timezone.now()
    )
    assert batch.row_count == 10_000 and Payment.objects.count() == 10_000
    assert Coverage.objects.filter(status="active").count() == 10_000
    assert_ledger_consistent()
