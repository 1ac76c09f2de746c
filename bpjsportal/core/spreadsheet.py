"""Cells a spreadsheet opens safely: a text cell that a spreadsheet could read as a formula is
shown as text (OWASP, "CSV Injection"). Used by every CSV and XLSX the portal writes."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

# A spreadsheet reads a cell that begins with one of these as a formula (OWASP, "CSV
# Injection"); a leading space does not stop every spreadsheet, and some read the full-width
# forms (U+FF1D, U+FF0B, U+FF0D, U+FF20) as the ASCII ones, hence the NFKC and the lstrip.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet could take this text cell for a formula."""
    if text[:1] in _FORMULA_STARTS:
        return True
    return unicodedata.normalize("NFKC", text.lstrip()[:1]) in _FORMULA_STARTS


def csv_cell(value: Any) -> Any:
    """Numbers as they are (a negative amount stays a number); text that looks like a formula
    behind a single quote, which makes a spreadsheet show it as text."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if looks_like_formula(text) else text
