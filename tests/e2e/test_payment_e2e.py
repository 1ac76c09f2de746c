"""An agent on a 360-px phone records a cash payment and sees the status turn active."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contributions.models import Coverage, Payment
from contributions.quotes import quote_payment
from enrollment.services import register_participant
from tests.conftest import login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]


def test_agent_records_cash_and_status_turns_active(
    page: Any, live_server: Any, agent: Any
) -> None:
    participant = register_participant(
        **registration_data(nik=nik_for(serial=31), registered_by=agent.staff)
    )
    cov = Coverage.objects.get(pk=participant.pk)
    amount = quote_payment(participant, cov, months=2, as_of=timezone.localdate()).amount

    login(page, live_server, agent.username)
    page.click(f"text={participant.kpj_number}")
    page.wait_for_selector("[data-testid=coverage-status]")
    assert page.get_attribute("[data-testid=coverage-status]", "data-status") == "grace"

    page.select_option("[data-testid=cash-form] select[name=months]", "2")
    page.fill("[data-testid=cash-form] input[name=amount]", str(amount))
    page.screenshot(path="var/e2e-cash-form.png")  # full_page here upsets the next click
    page.click("[data-testid=cash-form] button[type=submit]")

    page.wait_for_selector("[data-testid=receipt]")
    assert page.get_attribute("[data-testid=coverage-status]", "data-status") == "active"
    receipt_amount = page.inner_text("[data-testid=receipt-amount]").replace(".", "")
    assert str(amount) in receipt_amount.replace(",", "")
    page.screenshot(path="var/e2e-receipt.png", full_page=True)

    page.click("[data-testid=back-to-participant]")
    page.wait_for_selector("[data-testid=coverage-status]")
    assert page.get_attribute("[data-testid=coverage-status]", "data-status") == "active"
    payment = Payment.objects.get()
    assert payment.collected_by == agent.staff and payment.months == 2
    assert Coverage.objects.get(pk=participant.pk).status == "active"
