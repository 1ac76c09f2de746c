"""The portal's side of a channel's charge API (docs/api.md "Autodebit"): one signed POST per
batch of charges to `<ApiClient.autodebit_url>/autodebit/charges/batch`,

    {"charges": [{"key": "AD12-202612", "mandate": 12, "account": "6281234567890",
                  "amount": 37800, "description": "BPJS Ketenagakerjaan BPU 2026-12 KPJ ..."},
                 ...]}
    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(the client's signing secret, "<t>.<body>")>

answered 200 {"results": [{"key", "status": "paid", "reference", "amount", "paid_at"} or
{"key", "status": "declined", "reason"}, one per charge]}. A key asked again gets the first
debit's answer, never a second debit. Anything else - no connection, a timeout, a 5xx, an
unreadable answer, a charge missing from the results, a debit of another amount - raises
ChannelUnavailable: the outcome is unknown and the same requests are sent again later.
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


def _charge_body(row: AutodebitCharge) -> dict[str, object]:
    return {
        "key": row.key,
        "mandate": row.mandate_id,
        "account": row.mandate.account,
        "amount": row.amount,
        "description": (
            f"BPJS Ketenagakerjaan BPU {row.period:%Y-%m} KPJ {row.participant.kpj_number}"
        ),
    }


def _answer(row: AutodebitCharge, item: object, url: str) -> ChannelAnswer:
    if not isinstance(item, dict):
        raise ChannelUnavailable(f"{url}: no answer for {row.key}")
    if item.get("status") == "paid":
        if item.get("amount") != row.amount:
            # The key was answered for another amount: not this request's debit.
            raise ChannelUnavailable(f"{url}: {row.key} answered with another amount")
        return ChannelAnswer(
            paid=True,
            reference=str(item.get("reference", "")),
            paid_at=_paid_at(item.get("paid_at")),
        )
    if item.get("status") == "declined":
        return ChannelAnswer(paid=False, reason=str(item.get("reason") or "declined"))
    raise ChannelUnavailable(f"{url}: {row.key} answered {item.get('status')!r}")


def charge_many(rows: list[AutodebitCharge]) -> dict[str, ChannelAnswer]:
    """Ask one channel (the rows' mandates all name it) to charge `rows`; the answer per key."""
    client = rows[0].mandate.client
    body = json.dumps({"charges": [_charge_body(r) for r in rows]}).encode()
    url = client.autodebit_url.rstrip("/") + "/autodebit/charges/batch"
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
    results = data.get("results") if isinstance(data, dict) else None
    if response.status_code != 200 or not isinstance(results, list):
        raise ChannelUnavailable(f"{url}: HTTP {response.status_code}")
    by_key = {str(item.get("key")): item for item in results if isinstance(item, dict)}
    return {row.key: _answer(row, by_key.get(row.key), url) for row in rows}
