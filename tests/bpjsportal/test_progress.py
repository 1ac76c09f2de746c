"""Progress lines of the long commands (issue 22, "Long commands"): rate and ETA while running,
the elapsed time at the end, nothing unless asked for or on a terminal."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from bpjsportal.core.progress import Progress


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
