"""CSV and XLSX of every dashboard table, with the page's filters and the user's scope."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from bpjsportal.core.spreadsheet import csv_cell, looks_like_formula
from enrollment import permissions

from . import selectors
from .cohorts import CohortFilters, cohort_table, flow_table
from .selectors import Filters, Scope

Table = tuple[list[str], list[str], list[dict[str, Any]]]  # keys, headers, rows

_BREAKDOWN_KEYS = [
    "key",
    "label",
    "registered",
    "active",
    "grace",
    "lapsed",
    "active_rate",
    "new_registrations",
    "reactivations",
    "lapses",
    "collected_total",
    "target",
    "gap",
]


def _breakdown_headers() -> list[str]:
    return [
        _("Code"),
        _("Name"),
        _("Registered"),
        _("Active"),
        _("Grace"),
        _("Lapsed"),
        _("Active rate"),
        _("New registrations"),
        _("Reactivations"),
        _("Lapses"),
        _("Collections (Rp)"),
        _("Target"),
        _("Gap"),
    ]


def _headline(f: Filters, scope: Scope) -> Table:
    p = selectors.progress(f)
    pr = p.projection
    rows = [
        (_("Data as of"), p.data_day.isoformat() if p.data_day else ""),
        (_("Registered"), p.registered),
        (_("Active"), p.active),
        (_("Grace"), p.grace),
        (_("Lapsed"), p.lapsed),
        (_("Active rate"), p.active_rate),
        (_("New registrations"), p.new_registrations),
        (_("Reactivations"), p.reactivations),
        (_("Lapses"), p.lapses),
        (_("Collections JKK (Rp)"), p.collections["JKK"]),
        (_("Collections JKM (Rp)"), p.collections["JKM"]),
        (_("Collections JHT (Rp)"), p.collections["JHT"]),
        (_("Collections, other (Rp)"), p.collections["other"]),
        (_("Collections total (Rp)"), p.collections["total"]),
        (_("Target"), p.target),
        (_("Gap"), pr["gap"]),
        (_("% of target"), pr["percent_of_target"]),
        (_("Required net growth a month"), pr["required_monthly"]),
        (_("Run rate a month (last 3 months)"), pr["run_rate"]),
        (_("Projected at year end"), pr["projected_year_end"]),
        (_("Target reached on"), pr["reached_on"].isoformat() if pr["reached_on"] else ""),
    ]
    return (
        ["figure", "value"],
        [_("Figure"), _("Value")],
        [{"figure": k, "value": v} for k, v in rows],
    )


def _series(f: Filters, scope: Scope) -> Table:
    rows = selectors.progress(f).series
    return (
        ["month", "actual", "target", "projected"],
        [_("Month"), _("Active"), _("Target path"), _("Projected")],
        rows,
    )


def _dimension(dimension: str) -> Callable[[Filters, Scope], Table]:
    def build(f: Filters, scope: Scope) -> Table:
        return _BREAKDOWN_KEYS, _breakdown_headers(), selectors.breakdown(f, dimension)

    return build


def _payers(f: Filters, scope: Scope) -> Table:
    """The stocks of the breakdown tables (their first seven columns), by payer."""
    keys = _BREAKDOWN_KEYS[:7]
    headers = [_("Payer"), *_breakdown_headers()[1:7]]
    return keys, headers, selectors.payer_split(f)


def _league(f: Filters, scope: Scope) -> Table:
    keys = [
        "rank",
        "agent_code",
        "username",
        "branch",
        "registered",
        "active",
        "active_rate",
        "new_registrations",
        "collected_total",
    ]
    headers = [
        _("Rank"),
        _("Agent code"),
        _("User"),
        _("Branch"),
        _("Registered"),
        _("Active"),
        _("Active rate"),
        _("New registrations"),
        _("Collections (Rp)"),
    ]
    return keys, headers, selectors.league(f, scope)


TABLES: dict[str, Callable[[Filters, Scope], Table]] = {
    "headline": _headline,
    "series": _series,
    "province": _dimension("province"),
    "regency": _dimension("regency"),
    "occupation": _dimension("occupation"),
    "channel": _dimension("channel"),
    "partner": _dimension("partner"),
    "sex": _dimension("sex"),
    "age_band": _dimension("age_band"),
    "payer": _payers,
    "league": _league,
}
# The cohort section's tables take its own cut (reporting.cohorts.parse_cohort_filters).
COHORT_TABLES: dict[str, Callable[[CohortFilters], Table]] = {
    "cohorts": cohort_table,
    "retention_flows": flow_table,
}
DASHBOARD_ONLY = (set(TABLES) - {"league"}) | set(COHORT_TABLES)


def may_export(who: Any, table: str) -> bool:
    """The roles table decides: `export`, and for every table but the league `view_dashboard`
    too (agents and supervisors export their branch's league only)."""
    if not permissions.can(who, "export"):
        return False
    return table not in DASHBOARD_ONLY or permissions.can(who, "view_dashboard")


def to_csv(table: Table) -> bytes:
    """Every text cell quoted (a separator inside a name cannot start a new cell, whichever
    separator the spreadsheet's locale uses) and neutralised (_csv_cell); numbers unquoted."""
    keys, headers, rows = table
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([csv_cell(h) for h in headers])
    for row in rows:
        writer.writerow([csv_cell(row.get(k)) for k in keys])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens it as UTF-8


def _xlsx_cell(ws: Any, value: Any) -> Any:
    """Text always as a string cell (openpyxl would make "=…" a formula), unchanged; one that
    looks like a formula gets Excel's quotePrefix so it stays text when the user edits it."""
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    if looks_like_formula(value):
        cell.quotePrefix = True
    return cell


def to_xlsx(table: Table, title: str) -> bytes:
    keys, headers, rows = table
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    ws.append([_xlsx_cell(ws, h) for h in headers])
    for row in rows:
        ws.append([_xlsx_cell(ws, row.get(k)) for k in keys])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
