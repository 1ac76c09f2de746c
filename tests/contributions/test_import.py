"""Reconciliation CSV import: outcomes per row, re-import, header, encoding, 100,000 rows."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from contributions.errors import ImportFileError
from contributions.imports import HEADER, import_payments
from contributions.models import Coverage, ImportReport, LedgerEntry, OutboxMessage, Payment
from contributions.quotes import quote_payment
from tests.contributions.conftest import assert_ledger_consistent

# bank files dated and quoted as of today: at 23:30 UTC and 00:30 WIB (two dates at once)
pytestmark = [pytest.mark.django_db, pytest.mark.two_clocks]
ROOT = Path(__file__).resolve().parents[2]


def csv_bytes(
    rows: list[list[object]], header: tuple[str, ...] = HEADER, bom: bool = False
) -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    data = ("\n".join(lines) + "\n").encode()
    return (b"\xef\xbb\xbf" + data) if bom else data


def due(p: Any, months: int = 1) -> int:
    return quote_payment(
        p, Coverage.objects.get(pk=p.pk), months=months, as_of=timezone.localdate()
    ).amount


@pytest.fixture
def file_rows(make_participant: Any) -> list[list[object]]:
    a, b, c = make_participant(), make_participant(), make_participant()
    today = timezone.localdate().isoformat()
    return [
        ["TRX-1", a.kpj_number, "", due(a, 2), 2, today],  # matched
        ["TRX-2", "", b.nik, due(b), 1, f"{today}T00:00:00+07:00"],  # matched by NIK
        ["TRX-1", a.kpj_number, "", due(a, 2), 2, today],  # duplicate within the file
        ["TRX-3", "99999999999", "", 16_800, 1, today],  # unmatched
        ["TRX-4", c.kpj_number, "", due(c) + 1, 1, today],  # amount mismatch
        ["TRX-5", c.kpj_number, "", "abc", 1, today],  # not a number
        ["TRX-6", c.kpj_number, "", due(c), 13, today],  # months out of range
    ]


def run(data: bytes, channel: str = "bank") -> Any:
    return import_payments(io.BytesIO(data), channel=channel, filename="bank.csv")


def test_import_reports_each_outcome_and_posts_matched_rows(file_rows: list[list[object]]) -> None:
    report = run(csv_bytes(file_rows, bom=True))
    assert (report.rows, report.matched, report.duplicate, report.unmatched) == (7, 2, 1, 1)
    assert (report.amount_mismatch, report.rejected) == (1, 2)
    codes = [p["code"] for p in report.problems]
    assert codes == ["participant_unknown", "amount_mismatch", "row_invalid", "months_out_of_range"]
    assert Payment.objects.count() == 2
    assert_ledger_consistent()


def test_reimporting_the_same_file_changes_nothing(file_rows: list[list[object]]) -> None:
    data = csv_bytes(file_rows)
    run(data)
    snapshot = (
        list(Payment.objects.values_list("id", "amount").order_by("id")),
        list(LedgerEntry.objects.values_list("id", flat=True).order_by("id")),
        list(Coverage.objects.values_list("pk", "paid_through", "balance").order_by("pk")),
    )
    report = run(data)
    assert report.matched == 0 and report.duplicate == 3
    assert snapshot == (
        list(Payment.objects.values_list("id", "amount").order_by("id")),
        list(LedgerEntry.objects.values_list("id", flat=True).order_by("id")),
        list(Coverage.objects.values_list("pk", "paid_through", "balance").order_by("pk")),
    )
    assert_ledger_consistent()


def test_wrong_header_is_refused_before_anything_is_posted(file_rows: list[list[object]]) -> None:
    header = ("ref", "kpj", "nik", "amount", "months", "paid_at")
    with pytest.raises(ImportFileError) as err:
        run(csv_bytes(file_rows, header=header))
    assert err.value.code == "wrong_header"
    assert "reference,kpj,nik,amount,months,paid_at" in str(err.value.message)
    assert not Payment.objects.exists()


def test_wrong_encoding_names_the_line(file_rows: list[list[object]]) -> None:
    data = csv_bytes(file_rows) + "TRX-9,,,16800,1,2026-01-01,Pembayaran Bu Siti\n".encode("cp1252")
    data = data.replace(b"Siti", b"S\xeeti")  # a cp1252 byte that is not UTF-8
    with pytest.raises(ImportFileError) as err:
        run(data)
    assert err.value.code == "bad_encoding" and " 9 " in str(err.value.message)
    assert not Payment.objects.exists()


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImportFileError) as err:
        run(b"")
    assert err.value.code == "empty_file"


def test_hundred_thousand_rows_stream_through(make_participant: Any) -> None:
    p = make_participant()
    today = timezone.localdate().isoformat()
    out = io.BytesIO()
    out.write((",".join(HEADER) + "\n").encode())
    out.write(f"BIG-0,{p.kpj_number},,{due(p)},1,{today}\n".encode())
    for n in range(1, 100_000):
        out.write(f"BIG-{n},{90_000_000_000 + n},,16800,1,{today}\n".encode())
    out.seek(0)
    report = import_payments(out, channel="retail", filename="big.csv")
    assert report.rows == 100_000 and report.matched == 1 and report.unmatched == 99_999
    assert len(report.problems) == 200  # capped
    assert_ledger_consistent()


def test_command_imports_the_documented_sample(make_participant: Any) -> None:
    sample = ROOT / "docs" / "sample-payments.csv"
    out = io.StringIO()
    call_command("import_payments", str(sample), "--channel", "bank", stdout=out)
    assert "rows=" in out.getvalue() and "unmatched=" in out.getvalue()


def _state() -> tuple[int, int, int, int, int]:
    return (
        Payment.objects.count(),
        LedgerEntry.objects.count(),
        ImportReport.objects.count(),
        OutboxMessage.objects.count(),
        sum(Coverage.objects.values_list("balance", flat=True)),
    )


def test_dry_run_reports_what_the_import_would_do_and_posts_nothing(
    file_rows: list[list[object]], tmp_path: Path
) -> None:
    path = tmp_path / "bank.csv"
    path.write_bytes(csv_bytes(file_rows))
    before = _state()
    out = io.StringIO()
    call_command("import_payments", str(path), "--channel", "bank", "--dry-run", stdout=out)
    assert _state() == before  # no payment, ledger row, report, outbox row or balance
    dry = out.getvalue().splitlines()[0]
    assert dry.startswith("dry run, nothing posted: rows=7 matched=2 duplicate=1 unmatched=1 ")
    assert "report_id" not in dry

    real = io.StringIO()
    call_command("import_payments", str(path), "--channel", "bank", stdout=real)
    # the real import does what the dry run said, line for line
    assert real.getvalue().splitlines()[0].startswith(dry.removeprefix("dry run, nothing posted: "))
    assert out.getvalue().splitlines()[1:] == real.getvalue().splitlines()[1:]
    assert Payment.objects.count() == before[0] + 2


def test_progress_lines_only_when_asked_or_on_a_terminal(
    file_rows: list[list[object]], tmp_path: Path
) -> None:
    path = tmp_path / "bank.csv"
    path.write_bytes(csv_bytes(file_rows))
    quiet = io.StringIO()  # not a terminal: cron, a pipe
    call_command(
        "import_payments", str(path), "--channel", "bank", stdout=io.StringIO(), stderr=quiet
    )
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    call_command(
        "import_payments", str(path), "--channel", "bank", "--dry-run", "--progress",
        stdout=io.StringIO(), stderr=loud,
    )  # fmt: skip
    assert re.fullmatch(
        r"import_payments \(dry run\): 7 / 7 rows \(100 %\), [\d,]+ rows/s, done in 0:00:\d\d\n",
        loud.getvalue(),
    )


def test_command_reports_a_bad_header_as_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CommandError, match="wrong_header"):
        call_command("import_payments", str(bad), "--channel", "bank")


def test_rows_dated_outside_the_window_are_rejected_with_their_code(
    make_participant: Any,
) -> None:
    p = make_participant()  # registered today
    yesterday = timezone.localdate(p.created_at) - timedelta(days=1)
    rows = [
        ["OLD-1", p.kpj_number, "", due(p), 1, "0001-01-01"],
        ["OLD-2", p.kpj_number, "", due(p), 1, "2001-01-01T08:00:00+07:00"],
        ["PRE-1", p.kpj_number, "", due(p), 1, f"{yesterday.isoformat()}T10:00:00+07:00"],
    ]
    report = run(csv_bytes(rows))
    codes = {pr["reference"]: pr["code"] for pr in report.problems}
    assert codes == {
        "OLD-1": "paid_at_too_old",
        "OLD-2": "paid_at_too_old",
        "PRE-1": "paid_at_before_registration",
    }
    assert report.matched == 0 and report.rejected == 3
    assert not Payment.objects.exists()
