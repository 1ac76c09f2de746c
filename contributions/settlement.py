"""A channel's daily settlement file, reconciled against the notifications it sent (the third
step of the biller protocol, after inquiry and notification; docs/api.md "Settlement").

Format: CSV, UTF-8, header `reference,code,amount,paid_at` (paid_at ISO 8601, a zone or local
time). Each row is one payment the channel collected:

- **matched**: we have its notification with the same code and amount;
- **recorded**: we have none (the notification was lost): it is recorded now through the same
  path as a notification (`bills.notify_payment`, source "settlement": a payment, or suspense),
  so no money is lost; a late notification of it is answered as a replay;
- **amount_differs**: we have it with another code or amount (listed for follow-up);
- **bill_unknown** / **refused**: no bill has the code, or the row is unreadable or refused
  (paid_at outside the window...): listed, nothing written;
- **missing_theirs**: a notification of ours paid on the settlement day that the file lacks
  (voided ones excepted): listed for follow-up with the channel.

The same file again (same SHA-256 for the client) changes nothing and gets the first report.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from bpjsportal.core.spreadsheet import csv_cell
from enrollment.models import ApiClient

from .bills import BillError, notified_amount, notify_payment
from .errors import ImportFileError, PaymentError
from .imports import check_file, csv_lines, parse_paid_at
from .models import (
    BillNotification,
    BillReversal,
    Payment,
    Settlement,
    SettlementLine,
    SuspenseItem,
)

HEADER = ("reference", "code", "amount", "paid_at")
Outcome = SettlementLine.Outcome
MAX_AMOUNT = 10**12  # as the notification API: more is a misread file, not a payment
PROBLEMS = (Outcome.AMOUNT_DIFFERS, Outcome.BILL_UNKNOWN, Outcome.REFUSED)


@dataclass
class Row:
    line: int
    reference: str
    code: str
    amount: int | None
    paid_at: datetime | None


def _read(raw: IO[bytes]) -> list[Row]:
    rows = []
    for line, (reference, code, amount, paid_at) in csv_lines(raw, len(HEADER)):
        try:
            value: int | None = int(amount)
        except ValueError:
            value = None
        try:
            moment: datetime | None = parse_paid_at(paid_at)
        except ValueError:
            moment = None
        rows.append(Row(line, reference, code, value, moment))
    return rows


def _day_of(rows: list[Row], day: date | None) -> date:
    if day is not None:
        return day
    days = {timezone.localdate(r.paid_at) for r in rows if r.paid_at is not None}
    if len(days) != 1:
        raise ImportFileError(
            "settlement_day_unclear",
            _("The file's payments are not all of one day: give the settlement date."),
        )
    return days.pop()


def _reconcile(client: ApiClient, row: Row, sha: str) -> SettlementLine:
    line = SettlementLine(line=row.line, reference=row.reference[:128], code=row.code[:32])
    # an amount no payment can have is kept out of the line's number column (it would not fit)
    fits = row.amount is not None and abs(row.amount) <= MAX_AMOUNT
    line.amount = row.amount if fits else None
    if (
        not row.reference
        or row.amount is None
        or not 0 < row.amount <= MAX_AMOUNT
        or row.paid_at is None
    ):
        line.outcome = Outcome.REFUSED
        line.detail = _("A row needs a reference, a whole positive amount and an ISO paid_at.")
        return line
    seen = (
        # (the bill, payment and suspense item read by id in queries of their own: a join on
        # those ids would leave the participant's node on a cluster)
        BillNotification.objects.prefetch_related("bill", "payment", "suspense")
        .filter(client=client, reference=row.reference)
        .first()
    )
    if seen is not None:
        line.notification, line.participant_id = seen, seen.participant_id
        if seen.bill.code == row.code and notified_amount(seen) == row.amount:
            line.outcome = Outcome.MATCHED
        else:
            line.outcome = Outcome.AMOUNT_DIFFERS
            line.detail = _("We were notified of Rp %(amount)s for code %(code)s.") % {
                "amount": f"{notified_amount(seen):,}".replace(",", "."),
                "code": seen.bill.code,
            }
        return line
    try:
        done = notify_payment(
            client=client,
            code=row.code,
            reference=row.reference,
            amount=row.amount,
            paid_at=row.paid_at,
            body_sha256=hashlib.sha256(f"{sha}:{row.line}".encode()).hexdigest(),
            source=BillNotification.Source.SETTLEMENT,
        )
    except (BillError, PaymentError) as exc:
        line.outcome = Outcome.BILL_UNKNOWN if exc.code == "bill_unknown" else Outcome.REFUSED
        line.detail = f"{exc.code}: {exc.message}"[:255]
        return line
    n = done.notification
    line.notification, line.participant_id = n, n.participant_id
    line.outcome = Outcome.RECORDED
    line.detail = n.outcome if n.suspense is None else f"suspense: {n.suspense.reason}"
    return line


def _missing_theirs(client: ApiClient, day: date, references: set[str]) -> list[SettlementLine]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    end = start + timedelta(days=1)
    # (subqueries naming the participant, not joins on the ids: on a cluster each stays on the
    # participant's node)
    mine = {"participant_id": OuterRef("participant_id")}
    voided = BillReversal.objects.filter(**mine, notification=OuterRef("pk"))
    paid = Payment.objects.filter(
        **mine, pk=OuterRef("payment_id"), paid_at__gte=start, paid_at__lt=end
    )
    held = SuspenseItem.objects.filter(
        **mine, pk=OuterRef("suspense_id"), paid_at__gte=start, paid_at__lt=end
    )
    ours = (
        BillNotification.objects.filter(client=client)
        .filter(~Exists(voided))
        .filter(Exists(paid) | Exists(held))
        .prefetch_related("bill", "payment", "suspense")
        .order_by("id")
    )
    return [
        SettlementLine(
            participant_id=n.participant_id,
            reference=n.reference,
            code=n.bill.code,
            amount=notified_amount(n),
            outcome=Outcome.MISSING_THEIRS,
            notification=n,
        )
        for n in ours
        if n.reference not in references
    ]


def import_settlement(
    raw: IO[bytes],
    *,
    client: ApiClient,
    filename: str,
    day: date | None = None,
    user: User | None = None,
) -> tuple[Settlement, bool]:
    """Reconcile one settlement file of `client`: (the report, True), or the report of the same
    file imported before (False) and nothing else. Raises ImportFileError (client_not_channel,
    bad_encoding, empty_file, wrong_header, settlement_day_unclear) before anything is
    written. Each recorded row is its own transaction (notify_payment), so an interrupted
    import is finished by importing the file again."""
    if client.scope != ApiClient.Scope.CHANNEL:
        raise ImportFileError(
            "client_not_channel", _("Settlement files come from a payment channel's API client.")
        )
    sha = check_file(raw, HEADER)
    first = Settlement.objects.filter(client=client, sha256=sha).first()
    if first is not None:
        return first, False
    raw.seek(0)
    rows = _read(raw)
    day = _day_of(rows, day)
    lines = [_reconcile(client, row, sha) for row in rows]
    lines += _missing_theirs(client, day, {row.reference for row in rows})
    count = {o: sum(1 for x in lines if x.outcome == o) for o in Outcome.values}
    try:
        with transaction.atomic():
            settlement = Settlement.objects.create(
                client=client,
                day=day,
                filename=filename[:255],
                sha256=sha,
                rows=len(rows),
                matched=count[Outcome.MATCHED],
                recorded=count[Outcome.RECORDED],
                missing_theirs=count[Outcome.MISSING_THEIRS],
                problems=sum(
                    count[o]
                    for o in (Outcome.AMOUNT_DIFFERS, Outcome.BILL_UNKNOWN, Outcome.REFUSED)
                ),
                created_by=user,
            )
            for x in lines:
                x.settlement = settlement
            SettlementLine.objects.bulk_create(lines)
    except IntegrityError:  # the same file imported at the same moment: that report stands
        return Settlement.objects.get(client=client, sha256=sha), False
    return settlement, True


CSV_HEADER = ("line", "reference", "code", "amount", "outcome", "detail")


def report_csv(settlement: Settlement) -> bytes:
    """The report as CSV (UTF-8 with BOM, for spreadsheets): every line, problems and
    follow-ups included; the channel's text behind csv_cell (no formula runs)."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(CSV_HEADER)
    for x in settlement.lines.order_by("line", "id"):
        values = (x.line, x.reference, x.code, x.amount, x.outcome, x.detail)
        writer.writerow([csv_cell(v) for v in values])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
