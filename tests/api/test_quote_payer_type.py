"""GET /api/v1/quotes/ with payer_type: budget-paid types pay the undiscounted rate, an unknown
value is a 400 naming the allowed ones."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

FULL, HALF = 16_800, 8_400


@pytest.mark.clock("2026-06-10T03:00:00Z")  # June 2026: a PP 50/2025 month for every sector
def test_quote_api_takes_a_payer_type(admin_api: Any) -> None:
    params = {"income": 1_000_000, "occupation": "ojol"}
    self_paid = admin_api.get("/api/v1/quotes/", params).json()
    apbd = admin_api.get("/api/v1/quotes/", {**params, "payer_type": "apbd"}).json()
    village = admin_api.get("/api/v1/quotes/", {**params, "payer_type": "village_fund"}).json()
    sponsor = admin_api.get("/api/v1/quotes/", {**params, "payer_type": "sponsor"}).json()
    assert (self_paid["payer_type"], self_paid["total"]) == ("self", HALF)
    assert (sponsor["total"], apbd["total"], village["total"]) == (HALF, FULL, FULL)
    assert apbd["first_month"] == date(2026, 6, 1).isoformat()
    bad = admin_api.get("/api/v1/quotes/", {**params, "payer_type": "pemda"}, accept_language="en")
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == "payer_type_invalid" and "apbd" in body["message"]
    indonesian = admin_api.get("/api/v1/quotes/", {**params, "payer_type": "x"}).json()
    assert indonesian["message"] != body["message"]  # Bahasa Indonesia by default


@pytest.mark.clock("2026-06-10T03:00:00Z")
def test_a_partner_cannot_choose_a_cheaper_payer_type(
    sponsor_api: Any, partners: dict[str, Any], admin_api: Any
) -> None:
    """The payer type sets the price: a partner pays as its own payer type (an APBD regency
    cannot send `sponsor` to get the discount); its dues look-up quotes that price too; only an
    administrator names another."""
    from enrollment.models import Participant
    from tests.api.conftest import next_nik, reg_body

    gnl = partners["gnl"]
    gnl.payer_type = "apbd"
    gnl.save()
    body = reg_body(nik=next_nik(), occupation="ojol")
    registered = sponsor_api.post("/api/v1/participants/", body)
    assert registered.status_code == 201, registered.content
    kpj = Participant.objects.get(pk=registered.json()["id"]).kpj_number
    dues = sponsor_api.get("/api/v1/dues/", {"kpj": kpj}).json()
    assert dues["amount"] == FULL  # the regency's price, not the worker's discounted one
    cheap = sponsor_api.post("/api/v1/payments/", {
        "kpj_number": kpj, "amount": HALF, "months": 1, "reference": "PPU-1",
        "paid_at": "2026-06-10T09:00:00+07:00", "payer_type": "sponsor"})  # fmt: skip
    assert cheap.status_code == 400 and cheap.json()["code"] == "payer_type_not_allowed"
    batch = sponsor_api.post("/api/v1/payments/batches/", {
        "reference": "PPU-B", "paid_at": "2026-06-10T09:00:00+07:00", "payer_type": "partner",
        "rows": [{"kpj_number": kpj, "months": 1}]})  # fmt: skip
    assert batch.status_code == 400 and batch.json()["code"] == "payer_type_not_allowed"
    paid = sponsor_api.post("/api/v1/payments/", {
        "kpj_number": kpj, "amount": FULL, "months": 1, "reference": "PPU-2",
        "paid_at": "2026-06-10T09:00:00+07:00"})  # fmt: skip
    assert paid.status_code == 201 and paid.json()["payer_type"] == "apbd"
