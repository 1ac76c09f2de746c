"""The log mask sees through URL encoding and Unicode look-alikes (bpjsportal/core/logging.py): a
NIK
sent percent-encoded in full-width digits, in a request line as runserver logs it, comes out
masked from the configured handler (settings.LOGGING), as do full-width digits in a message."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from bpjsportal.core.logging import MaskPersonalDataFilter, mask_text

NIK = "3273051705900001"
FULL_WIDTH = NIK.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})  # U+FF13 U+FF12…
# the same in 4-digit groups with ideographic spaces (U+3000) between them
SPACED = "\u3000".join(FULL_WIDTH[i : i + 4] for i in range(0, 16, 4))
MASKED = "3273**********01"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the handler settings.LOGGING configured (with its filter and formatter) writes."""
    handlers = [
        h
        for h in logging.getLogger("django.server").handlers
        if any(isinstance(f, MaskPersonalDataFilter) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING's django.server handler lost the personal-data filter"
    buffer = io.StringIO()
    old = handlers[0].setStream(buffer)
    try:
        yield buffer
    finally:
        handlers[0].setStream(old)  # type: ignore[arg-type]


def request_line(query: str) -> None:
    """Log a request as runserver does (django.core.servers.basehttp.WSGIRequestHandler)."""
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /participants/?{query} HTTP/1.1", "200", "5120"
    )


@pytest.mark.parametrize(
    "query",
    [
        "nik=" + quote(FULL_WIDTH),  # %EF%BC%93%EF%BC%92…
        "nik=" + quote(NIK),  # plain digits (quote() leaves them)
        "nik=" + "".join(f"%{b:02X}" for b in NIK.encode()),  # every digit percent-encoded
        "nik=" + quote(quote(FULL_WIDTH)),  # encoded twice
        "q=3273+0517+0590+0001",  # 4-digit groups joined by "+" (a space in a query)
        "q=" + quote(SPACED),  # full-width digits and spaces
        "nik=" + quote(FULL_WIDTH).lower(),
    ],
)
def test_an_encoded_nik_in_a_request_line_is_logged_masked(
    console: io.StringIO, query: str
) -> None:
    request_line(query)
    line = console.getvalue()
    assert "GET /participants/?" in line and "200 5120" in line
    assert MASKED in line
    for secret in (NIK, FULL_WIDTH, quote(FULL_WIDTH), quote(quote(FULL_WIDTH)), "0590"):
        assert secret not in line
    assert "%EF%BC%90" not in line.upper()  # no full-width digit left, encoded or not


def test_full_width_digits_in_a_message_are_masked(console: io.StringIO) -> None:
    logging.getLogger("django.server").warning("NIK %s / %s", FULL_WIDTH, SPACED)
    line = console.getvalue()
    assert line.count(MASKED) == 2
    assert "0590" not in line and FULL_WIDTH[8:12] not in line


def test_decoding_cannot_forge_a_log_line(console: io.StringIO) -> None:
    request_line(f"nik={quote(FULL_WIDTH)}&x=%0A%0D%22GET%20/admin/%22%20200")
    lines = console.getvalue().splitlines()
    assert len(lines) == 1 and MASKED in lines[0]


def test_ordinary_encoded_text_is_left_as_it_was() -> None:
    for text in (
        '"GET /participants/?q=Budi+Santoso&page=2 HTTP/1.1" 200 5120',
        '"GET /static/css/portal.css?v=%EF%BC%91 HTTP/1.1" 304 0',
        "Paid 100% of Rp 1.000.000 + fee",
    ):
        assert mask_text(text) == text
