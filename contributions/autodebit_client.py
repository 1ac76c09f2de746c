"""The portal's side of a channel's charge API (docs/api.md "Autodebit"): one signed POST per
charge to `<ApiClient.autodebit_url>/autodebit/charges`,

    {"key": "AD12-202612", "mandate": 12, "account": "6281234567890", "amount": 37800,
     "description": "BPJS Ketenagakerjaan BPU 2026-12 KPJ 12345678901"}
    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(the client's signing secret, "<t>.<body>")>

answered 200/201 {"status": "paid", "reference", "amount", "paid_at"} (the same key again: the
first debit's answer, never a second debit) or 402 {"status": "declined", "reason"}. Anything
else - no connection, a timeout, a 5xx, an unreadable answer - raises ChannelUnavailable: the
outcome is unknown and the same request is sent again later.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime

import httpx
from django.conf import settings

from enrollment.api.signing import signature_header, signing_secret

from .models import AutodebitCharge

_local = threading.local()


class ChannelUnavailable(Exception):
    """The channel did not answer (network, timeout, 5xx): the outcome is unknown, try again
    with the same key."""


@dataclass(frozen=True)
class ChannelAnswer:
    paid: bool
    reference: str = ""
    reason: str = ""
    paid_at: datetime | None = None


def _http() -> httpx.Client:
    """One keep-alive client per thread (workers charge many mandates in a row)."""
    client = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(timeout=float(settings.AUTODEBIT_TIMEOUT))
        _local.client = client
    return client


def _paid_at(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def charge(row: AutodebitCharge) -> ChannelAnswer:
    client = row.mandate.client
    body = json.dumps(
        {
            "key": row.key,
            "mandate": row.mandate_id,
            "account": row.mandate.account,
            "amount": row.amount,
            "description": (
                f"BPJS Ketenagakerjaan BPU {row.period:%Y-%m} KPJ {row.participant.kpj_number}"
            ),
        }
    ).encode()
    url = client.autodebit_url.rstrip("/") + "/autodebit/charges"
    try:
        response = _http().post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature": signature_header(body, signing_secret(client)),
            },
        )
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ChannelUnavailable(f"{url}: {exc.__class__.__name__}") from exc
    if not isinstance(data, dict):
        raise ChannelUnavailable(f"{url}: unreadable answer")
    status = response.status_code
    if status in (200, 201) and data.get("status") == "paid":
        if data.get("amount") not in (None, row.amount):
            # The key was answered for another amount: not this request's debit.
            raise ChannelUnavailable(f"{url}: the channel answered another amount")
        return ChannelAnswer(
            paid=True,
            reference=str(data.get("reference", "")),
            paid_at=_paid_at(data.get("paid_at")),
        )
    if status == 402 and data.get("status") == "declined":
        return ChannelAnswer(paid=False, reason=str(data.get("reason") or "declined"))
    raise ChannelUnavailable(f"{url}: HTTP {status}")
