"""The payout file of a month's approved statements, as CSV and XLSX. Cells go through
bpjsportal.core.spreadsheet (no formula injection), like reporting's exports; reporting is a
higher layer, so this small writer is commissions' own."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from bpjsportal.core.spreadsheet import csv_cell, looks_like_formula

from .selectors import export_rows

COLUMNS = (
    "statement",
    "month",
    "kind",
    "code",
    "name",
    "branch",
    "new_participants",
    "qualifying",
    "fee",
    "incentive",
    "clawback",
    "office_share",
    "total",
    "status",
    "approved_at",
    "paid_at",
    "payment_reference",
)


def to_csv(month: date) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(COLUMNS)
    for row in export_rows(month):
        writer.writerow([csv_cell(row[k]) for k in COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens it as UTF-8


def _cell(ws: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    if looks_like_formula(value):
        cell.quotePrefix = True
    return cell


def to_xlsx(month: date) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=f"commissions {month:%Y-%m}")
    ws.append(list(COLUMNS))
    for row in export_rows(month):
        ws.append([_cell(ws, row[k]) for k in COLUMNS])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
