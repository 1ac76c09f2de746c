"""Names from the data (an occupation, a partner) reach the dashboard escaped: the chart data is
a json_script block, so a name holding `</script>` cannot end it (docs/security.md, CSP)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from django.test import Client

from reporting.rollups import rebuild_rollups
from tests.conftest import login_as

HOSTILE = "Tukang </script><script>alert(1)</script>"
DATA_BLOCK = re.compile(r'<script id="report-data" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def hostile_names(participant_on: Any, pay_on: Any) -> None:
    """One worker in 2025 whose occupation and partner carry a script-closing name."""
    from enrollment.models import Occupation, Partner

    Occupation.objects.create(code="evil", name_id=HOSTILE, name_en=HOSTILE, sort_order=1)
    partner = Partner.objects.create(code="EVIL", name=HOSTILE, kind="sponsor")
    p = participant_on(date(2025, 1, 10), occupation="evil", partner=partner)
    pay_on(p, date(2025, 1, 12))
    rebuild_rollups(start=date(2025, 1, 1), end=date(2025, 1, 31))


def test_a_name_with_a_script_tag_is_not_written_raw(hostile_names: Any, admin_user: Any) -> None:
    c = login_as(Client(), admin_user)
    r = c.get("/reports/", {"year": 2025, "as_of": "2025-01-31"})
    assert r.status_code == 200
    html = r.content.decode()
    assert "<script>alert(1)" not in html
    # every </script> on the page closes one of our own <script> elements
    assert html.count("</script>") == html.count("<script ")
    block = DATA_BLOCK.search(html)
    assert block is not None
    data = json.loads(block.group(1))
    assert HOSTILE in [row["label"] for row in data["occupation"]]
    # the tables and the filter lists show the names as text
    assert html.count("Tukang &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
