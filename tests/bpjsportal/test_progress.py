"""Progress lines of the long commands (issue 22, "Long commands"): rate and ETA while running,
the elapsed time at the end, nothing unless asked for or on a terminal."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from bpjsportal.core.progress import Progress
from reporting.models import DailyRollup
from tests.conftest import nik_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_carry_done_total_rate_and_eta() -> None:
    out = io.StringIO()
    bar = Progress("load", total=1000, enabled=True, stream=out, every=0)
    bar.advance(250)
    bar.advance(250)
    bar.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(
        r"load: 250 / 1,000 rows \(25 %\), [\d,]+ rows/s, ETA \d:\d\d:\d\d", lines[0]
    )
    assert lines[1].startswith("load: 500 / 1,000 rows (50 %)")
    assert re.fullmatch(
        r"load: 500 / 1,000 rows \(50 %\), [\d,]+ rows/s, done in \d:\d\d:\d\d", lines[2]
    )


def test_lines_are_spaced_in_time() -> None:
    out = io.StringIO()
    bar = Progress("load", total=10, enabled=True, stream=out, every=3600)
    for _ in range(10):
        bar.advance()
    assert out.getvalue() == ""  # the first line is due after an hour
    bar.finish()
    assert out.getvalue().startswith("load: 10 / 10 rows (100 %)")


def test_on_by_default_only_on_a_terminal() -> None:
    assert Progress("x", stream=Terminal()).enabled
    assert not Progress("x", stream=io.StringIO()).enabled
    assert not Progress("x", stream=Terminal(), enabled=False).enabled


@pytest.mark.django_db
def test_check_ledger_reports_progress(register: object) -> None:
    register()  # type: ignore[operator]
    err = io.StringIO()
    call_command("check_ledger", "--progress", stdout=io.StringIO(), stderr=err)
    assert re.fullmatch(
        r"check_ledger: 1 / 1 participants \(100 %\), [\d,.]+ participants/s, done in 0:00:\d\d\n",
        err.getvalue(),
    )
    quiet = io.StringIO()
    call_command("check_ledger", "--no-progress", stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("workers", "sessions"),
    [
        pytest.param(1, "one session", id="one-session", marks=pytest.mark.django_db),
        # two sessions build the groups at once: only outside a transaction
        pytest.param(
            2, "2 session(s)", id="parallel", marks=pytest.mark.django_db(transaction=True)
        ),
    ],
)
@pytest.mark.clock("2027-01-04T10:00:00+07:00")  # a short range: 1 to 4 January
def test_rebuild_rollups_reports_each_phase_and_group(
    register: Any, settings: Any, workers: int, sessions: str
) -> None:
    """Two workers in two provinces, a group of provinces each (ROLLUP_BUILD_CHUNK = 1): a line
    as each phase starts and as each group is built, then the elapsed time; stdout keeps the
    result lines."""
    settings.ROLLUP_BUILD_CHUNK = 1
    settings.ROLLUP_BUILD_WORKERS = workers
    register()  # Kota Bandung, province 32
    register(nik=nik_for(serial=2, prefix="357801"), village="35.78.01.1001")  # Surabaya, 35
    today = timezone.localdate()
    first = date(today.year, 1, 1)  # nothing built yet: the year-to-date sums start there
    err, out = io.StringIO(), io.StringIO()
    call_command("rebuild_rollups", "--from", str(today), "--progress", stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    at = r" \(at \d:\d\d:\d\d\)"
    group = r"rebuild_rollups: {} / 2 groups of provinces \({} %\), [\d,.]+ groups of provinces/s"
    days = (today - first).days + 1
    assert re.fullmatch(
        rf"rebuild_rollups: {first}\.\.{today} \({days} days\): 2 group\(s\) of provinces in "
        rf"{re.escape(sessions)}{at}",
        lines[0],
    ), lines
    assert re.fullmatch(group.format(1, 50) + r", ETA \d:\d\d:\d\d", lines[1]), lines
    assert re.fullmatch(group.format(2, 100) + r", ETA 0:00:00", lines[2]), lines
    phases = [re.sub(at + "$", "", line) for line in lines[3:-1]]
    assert phases == [
        "rebuild_rollups: "
        + (
            "agent and province rows, day marks"
            if workers == 1
            else "the range's rows from the staging tables; agent and province rows"
        ),
        "rebuild_rollups: cohort rollups",
        "rebuild_rollups: vacuum of the rollup tables",
        "rebuild_rollups: dashboard cache warm-up",
    ]
    assert all(re.search(at + "$", line) for line in lines[3:-1])
    assert re.fullmatch(group.format(2, 100) + r", done in \d:\d\d:\d\d", lines[-1]), lines
    assert out.getvalue().startswith(f"rollups: {days} days, ")  # the result, on stdout
    assert DailyRollup.objects.filter(day=today).values("province_id").distinct().count() == 2

    quiet = io.StringIO()
    call_command(
        "rebuild_rollups", "--from", str(today), "--no-progress", stdout=io.StringIO(), stderr=quiet
    )
    assert quiet.getvalue() == ""
