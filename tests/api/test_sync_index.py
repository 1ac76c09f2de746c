"""A sync page starts its index scan at the client's position: (sync_txid, id) > (t, i) is an
index condition, not a filter over every earlier row (bench/bench_sync.py measured the filter
form at 111 ms a page 43,000 rows in, growing with the position)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpjsportal.core.api.sync import Position, Since, sync_page
from contributions.models import Payment
from enrollment.models import Participant


@pytest.mark.parametrize("model", [Participant, Payment])
def test_the_position_is_an_index_condition(db: Any, model: Any) -> None:
    with CaptureQueriesContext(connection) as captured:
        sync_page(model.objects.all(), Since((Position(txid=12345, id=678),)), limit=500)
    (page_sql,) = [q["sql"] for q in captured.captured_queries if "ORDER BY" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # an empty test table: force the index
        cursor.execute("EXPLAIN " + page_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    index_cond = [line for line in plan.splitlines() if "Index Cond" in line]
    assert index_cond, plan
    assert "ROW(sync_txid, id) > ROW('12345'::bigint, '678'::bigint)" in index_cond[0] or (
        "ROW(sync_txid, id) > ROW(12345, 678)" in index_cond[0]
    ), plan
    assert "Filter" not in plan, plan
