"""In a real browser, the NIK check's limit shows its message in place (htmx swaps the 429)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from enrollment.nik_check import counter_key
from tests.conftest import login, nik_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]


def test_the_limit_message_shows_under_the_nik_field(
    page: Any, live_server: Any, agent: Any, settings: Any
) -> None:
    settings.NIK_CHECK_RATE = "1/min"
    cache.delete(counter_key(agent))
    try:
        login(page, live_server, agent.username)
        page.goto(f"{live_server.url}/register/")
        page.fill("#id_nik", nik_for(serial=5))
        page.dispatch_event("#id_nik", "change")
        page.wait_for_selector("[data-testid=nik-check].ok")
        page.fill("#id_nik", nik_for(serial=6))
        page.dispatch_event("#id_nik", "change")
        page.wait_for_selector("[data-testid=nik-check].error")
        assert "Terlalu banyak pemeriksaan NIK" in page.inner_text("[data-testid=nik-check]")
    finally:
        cache.delete(counter_key(agent))
