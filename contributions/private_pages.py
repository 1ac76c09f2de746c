"""Response headers of the pages that show one participant's money without a staff login: the
participant's own pages (/me/) and a reminder's pay link (/b/...)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from bpjsportal.core import qr

from .bills import where_to_pay
from .models import Bill


def private(response: HttpResponse, *, no_referrer: bool = False) -> HttpResponse:
    """Never cached, never indexed. `no_referrer` for the pay link, whose path is its secret (a
    page with forms cannot use it: a browser then sends "Origin: null" with the POSTs and the
    CSRF check refuses them; the site's "same-origin" policy already keeps paths on the site)."""
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    if no_referrer:
        response["Referrer-Policy"] = "no-referrer"
    return response


def bill_display(bill: Bill | None) -> dict[str, Any]:
    """What a page shows of a bill: the code in groups of four, its QR code, where to pay."""
    return {
        "bill": bill,
        "code_groups": [bill.code[i : i + 4] for i in range(0, 16, 4)] if bill else [],
        "qr_svg": qr.svg(bill.code) if bill else "",
        "where_to_pay": where_to_pay(),
    }
