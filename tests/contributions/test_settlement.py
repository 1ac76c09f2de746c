"""A channel's daily settlement file reconciled against its notifications: matched, missing on
our side (recorded now, so nothing is lost), missing on theirs (listed), problems listed, and a
re-import changes nothing (contributions/settlement.py)."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions.bills import notify_payment, open_bill
from contributions.errors import ImportFileError
from contributions.models import (
    Bill,
    BillNotification,
    Payment,
    Settlement,
    SettlementLine,
    SuspenseItem,
)
from contributions.settlement import import_settlement, report_csv
from tests.conftest import login_as

# Payments five minutes old for participants registered now, settled "today": at noon in Jakarta,
# so the five minutes never cross local midnight (the payment would be dated before the
# registration day).
pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-10T05:00:00Z")]


@pytest.fixture
def bank() -> Any:
    from enrollment.api.clients import create_api_client

    return create_api_client(name="Bank X", scope="channel", payment_channel="bank").client


@pytest.fixture
def bills(make_participant: Any) -> list[Bill]:
    return [open_bill(participant=make_participant(), months=1)[0] for _ in range(4)]


def notify(bank: Any, bill: Bill, reference: str, amount: int | None = None) -> Any:
    return notify_payment(
        client=bank,
        code=bill.code,
        reference=reference,
        amount=bill.amount if amount is None else amount,
        paid_at=timezone.now() - timedelta(minutes=5),
        body_sha256=hashlib.sha256(reference.encode()).hexdigest(),
    )


def csv_file(*rows: tuple[Any, ...]) -> io.BytesIO:
    lines = ["reference,code,amount,paid_at"] + [",".join(str(v) for v in r) for r in rows]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def the_day_file(bank: Any, bills: list[Bill]) -> io.BytesIO:
    """What the bank says it collected today: bills 0 and 1 notified (1 with another amount),
    bill 2 never notified, a code no bill has, and a row without an amount. Bill 3 was notified
    but is not in the file."""
    notify(bank, bills[0], "R0")
    notify(bank, bills[1], "R1")
    notify(bank, bills[3], "R3")
    now = timezone.localtime(timezone.now() - timedelta(minutes=5)).isoformat()
    return csv_file(
        ("R0", bills[0].code, bills[0].amount, now),
        ("R1", bills[1].code, bills[1].amount + 100, now),
        ("R2", bills[2].code, bills[2].amount, now),
        ("R9", "8" + "0" * 15, 50_000, now),
        ("R8", bills[0].code, "", now),
        ("R7", bills[2].code, 10**20, now),
    )


def test_a_settlement_file_is_reconciled_both_ways(bank: Any, bills: list[Bill]) -> None:
    raw = the_day_file(bank, bills)
    settlement, new = import_settlement(raw, client=bank, filename="bank-x.csv")
    assert new and settlement.day == timezone.localdate()
    outcomes = dict(settlement.lines.values_list("reference", "outcome"))
    assert outcomes == {
        "R0": "matched", "R1": "amount_differs", "R2": "recorded", "R9": "bill_unknown",
        "R8": "refused", "R7": "refused", "R3": "missing_theirs",
    }  # fmt: skip
    counts = (settlement.rows, settlement.matched, settlement.recorded, settlement.missing_theirs)
    assert counts == (6, 1, 1, 1) and settlement.problems == 4
    # missing on our side: recorded through the notification path, as a payment
    recorded = BillNotification.objects.get(reference="R2")
    assert recorded.source == "settlement" and recorded.outcome == "applied"
    assert Payment.objects.get(pk=recorded.payment_id).amount == bills[2].amount
    assert Bill.objects.get(pk=bills[2].pk).status == "paid"
    line = settlement.lines.get(reference="R1")
    told = f"Rp {bills[1].amount:,}".replace(",", ".")
    assert told in line.detail and bills[1].code in line.detail  # for the follow-up
    assert settlement.lines.get(reference="R3").line is None  # not in the file


def test_the_same_file_again_changes_nothing(bank: Any, bills: list[Bill]) -> None:
    raw = the_day_file(bank, bills)
    first, _ = import_settlement(raw, client=bank, filename="bank-x.csv")
    payments, lines = Payment.objects.count(), SettlementLine.objects.count()
    raw.seek(0)
    again, new = import_settlement(raw, client=bank, filename="renamed.csv")
    assert not new and again.pk == first.pk
    assert (Payment.objects.count(), SettlementLine.objects.count()) == (payments, lines)
    assert Settlement.objects.count() == 1


def test_a_late_notification_of_a_settled_payment_is_a_replay(bank: Any, bills: list[Bill]) -> None:
    now = timezone.localtime(timezone.now() - timedelta(minutes=5)).isoformat()
    raw = csv_file(("LATE", bills[0].code, bills[0].amount, now))
    import_settlement(raw, client=bank, filename="f.csv")
    late = notify(bank, bills[0], "LATE")
    assert late.replay and late.applied
    assert Payment.objects.filter(participant=bills[0].participant).count() == 1
    with pytest.raises(Exception, match="reference_conflict"):  # another amount: a conflict
        notify(bank, bills[0], "LATE", amount=bills[0].amount + 1)


def test_a_settled_row_for_an_expired_bill_goes_to_suspense(bank: Any, bills: list[Bill]) -> None:
    Bill.objects.filter(pk=bills[0].pk).update(expires_at=timezone.now() - timedelta(hours=1))
    now = timezone.localtime(timezone.now() - timedelta(minutes=5)).isoformat()
    settlement, _ = import_settlement(
        csv_file(("EXP", bills[0].code, bills[0].amount, now)), client=bank, filename="f.csv"
    )
    line = settlement.lines.get()
    assert line.outcome == "recorded" and "bill_expired" in line.detail
    assert SuspenseItem.objects.get(reference="EXP").reason == "bill_expired"


@pytest.mark.parametrize(
    "content,code",
    [
        (b"ref,kode,jumlah\n", "wrong_header"),
        (b"", "empty_file"),
        (b"reference,code,amount,paid_at\n\xff\xfe,1,2,3\n", "bad_encoding"),
        (
            b"reference,code,amount,paid_at\nA,8,1,2026-12-01T10:00:00+07:00\n"
            b"B,8,1,2026-12-02T10:00:00+07:00\n",
            "settlement_day_unclear",
        ),
    ],
)
def test_an_unreadable_file_is_refused_before_anything_is_written(
    bank: Any, content: bytes, code: str
) -> None:
    with pytest.raises(ImportFileError) as refused:
        import_settlement(io.BytesIO(content), client=bank, filename="f.csv")
    assert refused.value.code == code
    assert not Settlement.objects.exists() and not BillNotification.objects.exists()


def test_the_command_prints_the_report_and_writes_a_safe_csv(
    bank: Any, bills: list[Bill], tmp_path: Path
) -> None:
    now = timezone.localtime(timezone.now() - timedelta(minutes=5)).isoformat()
    path = tmp_path / "settle.csv"
    path.write_bytes(csv_file(("=HYPERLINK(1)", "8" + "0" * 15, 1000, now)).getvalue())
    out = io.StringIO()
    call_command("import_settlement", str(path), "--channel", "Bank X", "--csv",
                 str(tmp_path / "report.csv"), stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "rows=1 matched=0 recorded=0 missing_theirs=0 problems=1" in text
    assert "bill_unknown" in text
    report = (tmp_path / "report.csv").read_bytes().decode("utf-8-sig")
    assert '"\'=HYPERLINK(1)"' in report  # shown as text, never run as a formula
    out = io.StringIO()
    call_command("import_settlement", str(path), "--channel", "Bank X", stdout=out)
    assert "already imported" in out.getvalue()
    with pytest.raises(CommandError, match="No active channel"):
        call_command("import_settlement", str(path), "--channel", "Nobody")


def test_admins_read_the_report_and_download_it(
    bank: Any, bills: list[Bill], admin_user: Any
) -> None:
    settlement, _ = import_settlement(the_day_file(bank, bills), client=bank, filename="x.csv")
    client = Client()
    login_as(client, admin_user, with_password=True)
    page = client.get(reverse("admin:contributions_settlement_change", args=[settlement.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "R3" in html and "Tidak ada di data kanal" in html  # missing on theirs, in words
    url = reverse("admin:contributions_settlement_changelist")
    download = client.post(url, {"action": "settlement_csv", "_selected_action": [settlement.pk]})
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert download.content == report_csv(settlement)
