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
