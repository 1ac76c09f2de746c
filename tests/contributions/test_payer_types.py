"""Who pays decides the price: PP 50/2025's discount is not for contributions paid from the
state or a regional budget (APBN, APBD; a village fund is APBN money), so a budget payer pays the
full rate in discount months. Quotes for every payer type x sector x month at the window edges,
the quote API's payer_type, sponsor batches of a regency paying from its APBD, the import file's
payer_type column, and the participant's current payer through payments and reversals."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from typing import Any

import pytest
from django.utils import timezone

from contributions.errors import BatchError, PaymentError
from contributions.imports import import_payments
from contributions.models import Coverage, Payment
from contributions.quotes import quote_payment
from contributions.rates import quote_contribution
from contributions.services import post_sponsor_batch, record_payment, reverse_payment
from contributions.sponsorship import grant_sponsor_consent
from enrollment.models import Partner, PayerType

FULL, HALF = 16_800, 8_400  # Rp 1,000,000 income, JKK + JKM; PP 50/2025 halves both
BUDGET = {"apbd", "apbn", "village_fund"}
# (month, sector) -> is the month inside the sector's PP 50/2025 window
EDGES = {
    (date(2025, 12, 1), "transport"): False,
    (date(2026, 1, 1), "transport"): True,
    (date(2026, 3, 1), "transport"): True,
    (date(2026, 4, 1), "transport"): True,
    (date(2026, 12, 1), "transport"): True,
    (date(2027, 3, 1), "transport"): True,
    (date(2027, 4, 1), "transport"): False,
    (date(2025, 12, 1), "other"): False,
    (date(2026, 1, 1), "other"): False,
    (date(2026, 3, 1), "other"): False,
    (date(2026, 4, 1), "other"): True,
    (date(2026, 12, 1), "other"): True,
    (date(2027, 3, 1), "other"): False,
    (date(2027, 4, 1), "other"): False,
}


@pytest.mark.usefixtures("refdata")
@pytest.mark.parametrize("payer_type", PayerType.values)
@pytest.mark.parametrize(("month", "sector"), list(EDGES))
def test_every_payer_type_sector_and_window_edge(payer_type: str, month: date, sector: str) -> None:
    quote = quote_contribution(
        declared_income=1_000_000,
        programmes=["JKK", "JKM"],
        months=1,
        first_month=month,
        sector=sector,
        payer_type=payer_type,
    )
    discounted = EDGES[(month, sector)] and payer_type not in BUDGET
    assert quote.total == (HALF if discounted else FULL)


@pytest.mark.usefixtures("refdata")
def test_a_budget_payer_pays_full_months_across_the_window() -> None:
    """Twelve months from June 2026 ('other' sector): seven discounted for the worker, none for
    a regency's APBD."""
    common = {"declared_income": 1_000_000, "programmes": ["JKK", "JKM"], "months": 12}
    self_paid = quote_contribution(**common, first_month=date(2026, 6, 1))
    apbd = quote_contribution(**common, first_month=date(2026, 6, 1), payer_type="apbd")
    assert self_paid.total == 7 * HALF + 5 * FULL
    assert apbd.total == 12 * FULL


@pytest.fixture
def regency(refdata: Any) -> Partner:
    """Penajam Paser Utara style: a regency paying its vulnerable workers from the APBD."""
    return Partner.objects.create(
        code="PPU", name="Pemkab Penajam Paser Utara", kind="sponsor", payer_type="apbd"
    )


@pytest.mark.django_db
@pytest.mark.clock("2026-06-10T03:00:00Z")  # June 2026: a PP 50/2025 month for every sector
def test_a_budget_batch_in_a_discount_month_pays_the_full_rate(
    regency: Partner, make_participant: Any
) -> None:
    workers = [make_participant(start_month=date(2026, 6, 1)) for _i in range(3)]
    for w in workers:
        grant_sponsor_consent(participant=w, sponsor=regency, method="in_person", user=None,
                              note="SK Bupati: pekerja rentan, KTP diperiksa")  # fmt: skip
    rows = [(w.kpj_number, 1) for w in workers]
    paid_at = timezone.now()
    with pytest.raises(BatchError) as wrong:  # the discounted total is refused
        post_sponsor_batch(
            sponsor=regency, reference="APBD-06", rows=rows, paid_at=paid_at,
            total_amount=3 * HALF,
        )  # fmt: skip
    assert wrong.value.code == "amount_mismatch"
    batch, created = post_sponsor_batch(
        sponsor=regency, reference="APBD-06", rows=rows, paid_at=paid_at
    )
    assert created and batch.payer_type == "apbd" and batch.total_amount == 3 * FULL
    assert set(batch.payments.values_list("payer_type", "amount")) == {("apbd", FULL)}
    assert set(Coverage.objects.filter(pk__in=[w.pk for w in workers]).values_list(
        "payer_type", flat=True)) == {"apbd"}  # fmt: skip
    # the same reference again is the same batch; with another payer type it is a conflict
    again, created = post_sponsor_batch(
        sponsor=regency, reference="APBD-06", rows=rows, paid_at=paid_at
    )
    assert (again.pk, created) == (batch.pk, False)
    with pytest.raises(BatchError) as conflict:
        post_sponsor_batch(
            sponsor=regency, reference="APBD-06", rows=rows, paid_at=paid_at,
            payer_type="sponsor",
        )  # fmt: skip
    assert conflict.value.code == "reference_conflict"
    with pytest.raises(BatchError) as self_paid:
        post_sponsor_batch(
            sponsor=regency, reference="S", rows=rows, paid_at=paid_at, payer_type="self"
        )
    assert self_paid.value.code == "payer_type_invalid"
    # the regency's payer type corrected later: a retry of the old batch is still a replay
    Partner.objects.filter(pk=regency.pk).update(payer_type="apbn")
    regency.refresh_from_db()
    again, created = post_sponsor_batch(
        sponsor=regency, reference="APBD-06", rows=rows, paid_at=paid_at
    )
    assert (again.pk, created) == (batch.pk, False)
    with pytest.raises(BatchError) as unknown:
        post_sponsor_batch(
            sponsor=regency, reference="X", rows=rows, paid_at=paid_at, payer_type="bumn"
        )
    assert unknown.value.code == "payer_type_invalid"


@pytest.mark.django_db
@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_payments_carry_their_payer_type_and_the_coverage_the_current_one(
    make_participant: Any,
) -> None:
    p = make_participant(start_month=date(2026, 6, 1))
    cov = Coverage.objects.get(pk=p.pk)
    assert cov.payer_type == "self"
    now = timezone.now()
    with pytest.raises(PaymentError) as bad:
        record_payment(participant=p, amount=HALF, months=1, payer="participant",
                       channel="bank", reference="PT-0", paid_at=now, payer_type="ngo")  # fmt: skip
    assert bad.value.code == "payer_type_invalid"
    with pytest.raises(PaymentError) as cheap:  # a village fund pays the full rate
        record_payment(participant=p, amount=HALF, months=1, payer="sponsor", channel="bank",
                       reference="PT-1", paid_at=now, payer_type="village_fund")  # fmt: skip
    assert cheap.value.code == "amount_mismatch" and cheap.value.details["expected"] == FULL
    first, _ = record_payment(participant=p, amount=HALF, months=1, payer="participant",
                              channel="bank", reference="PT-2", paid_at=now)  # fmt: skip
    second, _ = record_payment(participant=p, amount=FULL, months=1, payer="sponsor",
                               channel="bank", reference="PT-3", paid_at=now,
                               payer_type="village_fund")  # fmt: skip
    assert (first.payer_type, second.payer_type) == ("self", "village_fund")
    assert Coverage.objects.get(pk=p.pk).payer_type == "village_fund"
    reverse_payment(payment=second, reason="test", user=None)
    assert Coverage.objects.get(pk=p.pk).payer_type == "self"  # back to the latest live one
    cov = Coverage.objects.get(pk=p.pk)
    due = quote_payment(p, cov, months=1, as_of=date(2026, 6, 10), payer_type="apbn")
    assert due.amount == FULL


@pytest.mark.django_db
@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_the_import_file_takes_an_optional_payer_type_column(make_participant: Any) -> None:
    a, b, c = (make_participant(start_month=date(2026, 6, 1)) for _i in range(3))
    day = datetime.combine(date(2026, 6, 9), time(10)).isoformat()
    text = (
        "reference,kpj,nik,amount,months,paid_at,payer_type\n"
        f"IMP-1,{a.kpj_number},,{HALF},1,{day},\n"
        f"IMP-2,{b.kpj_number},,{FULL},1,{day},APBD\n"
        f"IMP-3,{c.kpj_number},,{FULL},1,{day},kas_desa\n"
    )
    report = import_payments(io.BytesIO(text.encode()), channel="bank", filename="f.csv")
    assert (report.matched, report.rejected) == (2, 1)
    assert [p["code"] for p in report.problems] == ["payer_type_invalid"]
    got = dict(Payment.objects.filter(reference__startswith="IMP").values_list(
        "reference", "payer_type"))  # fmt: skip
    assert got == {"IMP-1": "self", "IMP-2": "apbd"}
    # the six-column file of before still imports, everyone self-paid
    old = f"reference,kpj,nik,amount,months,paid_at\nIMP-4,{c.kpj_number},,{HALF},1,{day}\n"
    assert import_payments(io.BytesIO(old.encode()), channel="bank", filename="g").matched == 1


@pytest.mark.django_db
@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_the_correcting_command_posts_receivables_once(
    make_participant: Any, regency: Partner
) -> None:
    """A regency's batches posted as a plain sponsor's (discounted) before it was known to pay
    from its APBD: the dry run reports them per sponsor and writes nothing; --apply posts one
    receivable per payment (payments untouched); check_ledger stays clean; every budget
    payment's net price is the full rate; a second run changes nothing."""
    from django.core.management import call_command

    from contributions.models import LedgerEntry
    from tests.contributions.conftest import assert_ledger_consistent

    Partner.objects.filter(pk=regency.pk).update(payer_type="sponsor")  # as it was first set up
    regency.refresh_from_db()
    workers = [make_participant(start_month=date(2026, 6, 1)) for _i in range(5)]
    paid_at = timezone.now()
    batch, _ = post_sponsor_batch(
        sponsor=regency, reference="OLD-1", rows=[(w.kpj_number, 1) for w in workers[:3]],
        paid_at=paid_at, admin_approval=True,
    )  # fmt: skip
    two, _ = post_sponsor_batch(
        sponsor=regency, reference="OLD-2", rows=[(workers[3].kpj_number, 2)],
        paid_at=paid_at, admin_approval=True,
    )  # fmt: skip
    assert batch.total_amount == 3 * HALF and two.total_amount == 2 * HALF
    reverse_payment(payment=batch.payments.order_by("id").first(), reason="bank recall", user=None)
    self_paid, _ = record_payment(participant=workers[4], amount=HALF, months=1,
                                  payer="participant", channel="bank", reference="S-1",
                                  paid_at=paid_at)  # fmt: skip
    Partner.objects.filter(pk=regency.pk).update(payer_type="apbd")  # the admin corrects it

    out = io.StringIO()
    call_command("correct_budget_payments", stdout=out)
    report = out.getvalue()
    assert f"PPU\tapbd\t3\t{2 * (FULL - HALF) + 2 * (FULL - HALF)}\t0" in report
    assert "dry run: 3 receivable(s) would be posted" in report
    assert not LedgerEntry.objects.filter(kind="due").exists()

    out = io.StringIO()
    call_command("correct_budget_payments", "--apply", stdout=out)
    assert "posted 3 receivable(s)" in out.getvalue()
    receivables = LedgerEntry.objects.filter(kind="due")
    assert receivables.count() == 3 and all(
        e.amount < 0 and "APBD" in e.reason for e in receivables
    )
    for payment in Payment.objects.filter(sponsor=regency):
        if payment.entries.filter(kind="payment", reversed_by__isnull=False).exists():
            assert not payment.entries.filter(kind="due").exists()  # reversed: nothing owed
            continue
        net = payment.amount - sum(e.amount for e in payment.entries.filter(kind="due"))
        assert net == FULL * payment.months
    assert not LedgerEntry.objects.filter(payment=self_paid, kind="due").exists()
    call_command("check_ledger", "--as-of", "2026-06-10")
    assert_ledger_consistent()

    out = io.StringIO()
    call_command("correct_budget_payments", "--apply", stdout=out)
    assert "posted 0 receivable(s)" in out.getvalue()
    assert LedgerEntry.objects.filter(kind="due").count() == 3


BATCH_CASES = [
    pytest.param(payer, month, sector, id=f"{payer}-{sector}-{month:%Y%m}",
                 marks=pytest.mark.clock(f"{month:%Y-%m}-10T03:00:00Z"))
    for payer in PayerType.values
    if payer != "self"  # a batch is someone else's money: refused below
    for (month, sector) in EDGES
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("payer_type", "month", "sector"), BATCH_CASES)
def test_a_batch_of_every_payer_type_sector_and_window_edge(
    make_participant: Any, payer_type: str, month: date, sector: str
) -> None:
    """A one-month sponsor batch posted on the 10th of each edge month, for a worker of each
    sector, costs what the quote matrix says: half in a discount month unless budget-paid."""
    sponsor = Partner.objects.create(code="B", name="Batch payer", kind="sponsor",
                                     payer_type=payer_type)  # fmt: skip
    occupation = "ojol" if sector == "transport" else "petani"
    worker = make_participant(start_month=month, occupation=occupation)
    batch, _ = post_sponsor_batch(sponsor=sponsor, reference="M", rows=[(worker.kpj_number, 1)],
                                  paid_at=timezone.now(), admin_approval=True)  # fmt: skip
    discounted = EDGES[(month, sector)] and payer_type not in BUDGET
    assert batch.payer_type == payer_type
    assert batch.total_amount == (HALF if discounted else FULL)
    assert batch.payments.get().period_start == month


@pytest.mark.django_db
@pytest.mark.clock("2026-06-10T03:00:00Z")  # June 2026: a PP 50/2025 month
def test_cash_from_a_village_fund_is_priced_at_the_full_rate(
    agent: Any, make_participant: Any
) -> None:
    """The agent's cash form asks whose money it is: a village fund pays the full rate."""
    import uuid

    from django.test import Client
    from django.urls import reverse

    from tests.conftest import login_as

    mine = make_participant(registered_by=agent.staff, occupation="petani")
    cov = Coverage.objects.get(pk=mine.pk)
    full = quote_payment(mine, cov, months=1, as_of=date(2026, 6, 10), payer_type="village_fund")
    own = quote_payment(mine, cov, months=1, as_of=date(2026, 6, 10))
    assert (full.amount, own.amount) == (FULL, HALF)  # the worker's own money: discounted
    client = login_as(Client(), agent)
    url = reverse("contributions:record_cash", args=[mine.pk])
    page = client.get(reverse("enrollment:participant", args=[mine.pk]))
    assert 'name="payer_type"' in page.content.decode()
    cheap = client.post(url, {"months": "1", "amount": str(HALF), "payer_type": "village_fund",
                              "client_token": str(uuid.uuid4())})  # fmt: skip
    assert cheap.status_code == 400 and "16.800" in cheap.content.decode()
    ok = client.post(url, {"months": "1", "amount": str(FULL), "payer_type": "village_fund",
                           "client_token": str(uuid.uuid4())})  # fmt: skip
    assert ok.status_code == 302
    assert Payment.objects.get().payer_type == "village_fund"
