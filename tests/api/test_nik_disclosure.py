"""Full NIKs are shown only where the roles table allows (`see_full_nik`), and every response
that shows one is logged: who, where, which participants (docs/security.md, Personal data)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api.conftest import next_nik, reg_body

pytestmark = pytest.mark.django_db


def _disclosures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bpjsportal.pii.disclosure"]


def test_a_list_with_full_niks_is_logged_once_with_the_client_and_ids(
    make_caller: Any, caplog: pytest.LogCaptureFixture
) -> None:
    admin = make_caller("admin")
    nik = next_nik()
    created = admin.post("/api/v1/participants/", reg_body(nik=nik))
    assert created.status_code == 201, created.json()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bpjsportal.pii.disclosure"):
        listed = admin.get("/api/v1/participants/")
    assert listed.status_code == 200
    assert nik in {row["nik"] for row in listed.json()["results"]}
    lines = _disclosures(caplog)
    assert len(lines) == 1, lines
    assert "API client" in lines[0] and "GET /api/v1/participants/" in lines[0]
    assert str(created.json()["id"]) in lines[0]
    assert nik not in lines[0]  # the log names the row, never the NIK


def test_masked_responses_log_nothing(
    make_caller: Any, partners: Any, caplog: pytest.LogCaptureFixture
) -> None:
    partner = make_caller("partner", partner=partners["combofit"])
    assert partner.post("/api/v1/participants/", reg_body(nik=next_nik())).status_code == 201
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bpjsportal.pii.disclosure"):
        listed = partner.get("/api/v1/participants/")
    assert listed.status_code == 200
    assert all("*" in row["nik"] for row in listed.json()["results"])
    assert _disclosures(caplog) == []
