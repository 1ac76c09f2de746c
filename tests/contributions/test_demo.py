"""The demo data has active, grace and lapsed participants, consistent with the ledger."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from contributions.models import Coverage, Payment


@pytest.mark.django_db
def test_seed_demo_adds_payments_for_every_status(refdata: Any, settings: Any) -> None:
    settings.DEBUG = True  # the demo is for `make run` only (tests run with DEBUG off)
    out = io.StringIO()
    call_command("seed_demo", "--per-agent", "8", stdout=out)
    assert "demo_payments_posted" in out.getvalue()
    assert set(Coverage.objects.values_list("status", flat=True)) == {"active", "grace", "lapsed"}
    # someone of each payer group: self-paid, a company (Sertakan), a regency's APBD
    assert {"self", "sponsor", "apbd"} <= set(Payment.objects.values_list("payer_type", flat=True))
    assert {"self", "sponsor", "apbd"} <= set(Coverage.objects.values_list("payer_type", flat=True))
    posted = Payment.objects.count()
    call_command("seed_demo", "--per-agent", "8", stdout=io.StringIO())  # safe to run twice
    assert Payment.objects.count() == posted
    call_command("check_ledger")
