"""A local stand-in for a payment channel (a bank teller, a shop till, an e-wallet), for the
demo (`make run`), tests and benchmarks. It speaks the biller protocol to the portal as a real
channel would (docs/api.md "Bills"): an inquiry of a code, then a payment notification signed
with its own signing secret - it knows only its token and secret, nothing of the portal.

    python -m contributions.fake_channel --port 8026 --api http://127.0.0.1:8000/api/v1 \\
        --credentials var/demo-channel.json      # {"token": "...", "secret": "..."}

    GET  /                      a page: type a bill code, see the inquiry, pay it
    GET  /?code=8...            the page with the inquiry's answer
    POST /pay  code=8...        pays the amount the inquiry gave (form post; the page shows
                                the portal's answer)
    POST /_control/pay          {"code", "amount"?, "reference"?} -> the portal's status and body
    GET  /_control/payments     its own record: every notification sent and the answer

Autodebit, the channel's side of the charge API (docs/api.md "Autodebit"):

    POST /autodebit/charges/batch  signed by the portal {"charges": [{"key", "mandate",
                                "account", "amount", ...}]} -> 200 {"results": [...]}, each
                                {"key", "status": "paid", "reference", "amount", "paid_at"}
                                (the same key again: the first answer - one debit per key) or
                                {"key", "status": "declined", "reason"} when told to fail (a
                                decline is not kept: the key may be charged again later)
    POST /autodebit/mode        fail=all|none (the page's buttons)
    POST /_control/autodebit    {"fail": "none" | "all" | "<account>,<account>", "delay": s,
                                 "down": true|false}: how the next charges go
    GET  /_control/charges      its own record: {"debits": {key: answer}, "requests": [...]}
Not for production: no TLS, everything in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bpjsportal.core.local_http import LocalServer, QuietHandler


def signature(secret: str, body: bytes, at: int | None = None) -> str:
    """The X-Signature header a channel sends: t=<unix seconds>,v1=<hex HMAC-SHA256>."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Channel:
    """The channel's side: its credentials, its HTTP client and its own record of payments."""

    def __init__(self, api: str, token: str, secret: str, prefix: str = "FAKE") -> None:
        self.api = api.rstrip("/")
        self.secret = secret
        self.http = httpx.Client(headers={"Authorization": f"Token {token}"}, timeout=10.0)
        self.prefix = f"{prefix}-{int(time.time())}"
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.record: list[dict[str, Any]] = []
        # autodebit: the debits made (by key), every charge request, and how to answer
        self.debits: dict[str, dict[str, Any]] = {}
        self.charge_requests: list[dict[str, Any]] = []
        self.fail = "none"
        self.delay = 0.0
        self.down = False

    def verify(self, body: bytes, header: str) -> bool:
        """The portal's charge request is signed with the same secret (X-Signature)."""
        parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
        try:
            t = int(parts.get("t", ""))
        except ValueError:
            return False
        expected = signature(self.secret, body, t)
        return abs(time.time() - t) <= 300 and hmac.compare_digest(expected, header.strip())

    def charge_batch(self, charges: list[Any]) -> tuple[int, dict[str, Any]]:
        """A batch of charge requests (one signed request of the portal): the answer of each."""
        if self.delay:
            time.sleep(self.delay)
        results = []
        for item in charges:
            status, answer = self.charge(item if isinstance(item, dict) else {})
            if status >= 400 and answer.get("status") != "declined":
                return status, answer
            results.append({"key": str(item.get("key", "")), **answer})
        return 200, {"results": results}

    def charge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One charge: the debit made for its key, or a new one, or a decline."""
        key, account, amount = str(data.get("key", "")), str(data.get("account", "")), 0
        try:
            amount = int(data.get("amount", 0))
        except (TypeError, ValueError):
            return 400, {"status": "error", "reason": "amount"}
        with self.lock:
            self.charge_requests.append({"key": key, "account": account, "amount": amount})
            if key in self.debits:
                return 200, self.debits[key]
            if self.fail == "all" or account in self.fail.split(","):
                return 402, {"status": "declined", "reason": "insufficient_funds"}
            answer = {
                "status": "paid",
                "reference": f"{self.prefix}-AD-{next(self.counter):06d}",
                "amount": amount,
                "paid_at": datetime.now(UTC).isoformat(),
            }
            self.debits[key] = answer
            return 201, answer

    def inquire(self, code: str) -> tuple[int, dict[str, Any]]:
        r = self.http.get(f"{self.api}/bills/{code}/", headers={"Accept-Language": "id"})
        return r.status_code, _json(r)

    def pay(
        self, code: str, amount: int, reference: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            reference = reference or f"{self.prefix}-{next(self.counter):06d}"
        body = json.dumps(
            {"reference": reference, "amount": amount, "paid_at": datetime.now(UTC).isoformat()}
        ).encode()
        r = self.http.post(
            f"{self.api}/bills/{code}/payments/",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature": signature(self.secret, body),
                "Accept-Language": "id",
            },
        )
        answer = _json(r)
        with self.lock:
            entry = {"reference": reference, "code": code, "amount": amount}
            self.record.append({**entry, "status": r.status_code, "answer": answer})
        return r.status_code, answer


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {"message": r.text[:200]}
    return data if isinstance(data, dict) else {"data": data}


PAGE = """<!doctype html><html lang="id"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kanal pembayaran (demo)</title>
<style>body{{font-family:sans-serif;max-width:420px;margin:1rem auto;padding:0 1rem}}
input,button{{font-size:1.1rem;padding:.4rem}} .box{{border:1px solid #ccc;border-radius:6px;
padding:.6rem;margin:.8rem 0}} .ok{{background:#e8f6ea}} .bad{{background:#fdecea}}</style>
</head><body><h1>Kanal pembayaran (demo)</h1>
<p>Teller / kasir / dompet digital: ketik kode pembayaran BPJS Ketenagakerjaan.</p>
<form method="get" action="/"><label>Kode pembayaran
<input name="code" inputmode="numeric" autocomplete="off" value="{code}" data-testid="channel-code">
</label> <button type="submit" data-testid="channel-inquire">Cek</button></form>{result}
<h2>Autodebit</h2>{autodebit}
</body></html>"""


def _autodebit_html(channel: Channel) -> str:
    with channel.lock:
        fail, debits = channel.fail, list(channel.debits.items())[-10:]
        asked = len(channel.charge_requests)
    mode = "menolak semua (saldo kurang)" if fail == "all" else "berhasil"
    rows = "".join(
        f"<li>{html.escape(key)}: Rp {int(d['amount']):,} ({html.escape(d['reference'])})</li>"
        for key, d in reversed(debits)
    ).replace(",", ".")
    buttons = "".join(
        f'<button type="submit" name="fail" value="{value}" data-testid="channel-ad-{value}">'
        f"{label}</button> "
        for value, label in (("none", "Tagihan berikut berhasil"), ("all", "Tolak tagihan"))
    )
    return (
        f'<div class="box" data-testid="channel-autodebit"><p>Tagihan autodebit: '
        f"<b>{mode}</b>. Permintaan: {asked}, debit: {len(channel.debits)}.</p>"
        f'<form method="post" action="/autodebit/mode">{buttons}</form>'
        f"<ul>{rows}</ul></div>"
    )


def _inquiry_html(code: str, status: int, data: dict[str, Any]) -> str:
    if status != 200:
        return (
            f'<div class="box bad" data-testid="channel-answer">{status} '
            f"{html.escape(str(data.get('code', '')))}: {html.escape(str(data.get('message', '')))}"
            "</div>"
        )
    amount = int(data.get("amount", 0))
    rupiah = f"{amount:,}".replace(",", ".")
    return (
        f'<div class="box" data-testid="channel-answer"><p>Nama: '
        f"<b>{html.escape(str(data.get('name', '')))}</b><br>Bulan: {int(data.get('months', 0))}"
        f'<br>Jumlah: <b data-testid="channel-amount">Rp {rupiah}</b></p>'
        f'<form method="post" action="/pay"><input type="hidden" name="code" '
        f'value="{html.escape(code)}"><input type="hidden" name="amount" value="{amount}">'
        f'<button type="submit" data-testid="channel-pay">Bayar</button></form></div>'
    )


def _paid_html(status: int, data: dict[str, Any]) -> str:
    css = "ok" if status in (200, 201) else "bad"
    text = html.escape(json.dumps(data, ensure_ascii=False))
    return f'<div class="box {css}" data-testid="channel-paid">{status}: {text}</div>'


class Handler(QuietHandler):
    server: FakeChannelServer

    def _page(self, code: str = "", result: str = "") -> None:
        body = PAGE.format(
            code=html.escape(code), result=result, autodebit=_autodebit_html(self.server.channel)
        ).encode()
        self._send(200, body, "text/html; charset=utf-8")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            data = json.loads(raw or "{}")
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_control/payments":
            with self.server.channel.lock:
                self._json(200, list(self.server.channel.record))
            return
        if url.path == "/_control/charges":
            ch = self.server.channel
            with ch.lock:
                self._json(200, {"debits": dict(ch.debits), "requests": list(ch.charge_requests)})
            return
        if url.path != "/":
            self._json(404, {"error": "not found"})
            return
        code = "".join(ch for ch in parse_qs(url.query).get("code", [""])[0] if ch.isdigit())
        if not code:
            self._page()
            return
        status, data = self.server.channel.inquire(code)
        self._page(code, _inquiry_html(code, status, data))

    def _raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _autodebit(self, path: str) -> None:
        ch = self.server.channel
        raw = self._raw()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._json(400, {"status": "error", "reason": "json"})
        elif path == "/_control/autodebit":
            with ch.lock:
                ch.fail = str(data.get("fail", ch.fail))
                ch.delay = float(data.get("delay", ch.delay))
                ch.down = bool(data.get("down", ch.down))
            self._json(200, {"fail": ch.fail, "delay": ch.delay, "down": ch.down})
        elif ch.down:
            self._json(503, {"status": "error", "reason": "down"})
        elif not ch.verify(raw, self.headers.get("X-Signature", "")):
            self._json(401, {"status": "error", "reason": "signature_invalid"})
        else:
            charges = data.get("charges")
            if not isinstance(charges, list):
                self._json(400, {"status": "error", "reason": "charges"})
            else:
                self._json(*ch.charge_batch(charges))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/autodebit/charges/batch", "/_control/autodebit"):
            self._autodebit(url.path)
            return
        form = self._form()
        if url.path == "/autodebit/mode":  # the page's buttons: how the next charges go
            with self.server.channel.lock:
                self.server.channel.fail = "all" if form.get("fail") == "all" else "none"
            self._page()
            return
        code = "".join(ch for ch in form.get("code", "") if ch.isdigit())
        try:
            amount = int(form.get("amount", ""))
        except ValueError:
            amount = 0
        if url.path == "/_control/pay":
            if not amount:
                inquiry_status, inquiry = self.server.channel.inquire(code)
                amount = int(inquiry.get("amount", 0)) if inquiry_status == 200 else 1
            status, data = self.server.channel.pay(code, amount, form.get("reference"))
            self._json(200, {"status": status, "body": data})
            return
        if url.path != "/pay":
            self._json(404, {"error": "not found"})
            return
        status, data = self.server.channel.pay(code, amount)
        self._page(code, _paid_html(status, data))


class FakeChannelServer(LocalServer):
    def __init__(self, channel: Channel, port: int = 0) -> None:
        super().__init__(port, Handler)
        self.channel = channel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--api", default="http://127.0.0.1:8000/api/v1")
    parser.add_argument("--credentials", type=Path, required=True, help='{"token", "secret"}')
    args = parser.parse_args()
    credentials = json.loads(args.credentials.read_text())
    channel = Channel(args.api, credentials["token"], credentials["secret"])
    server = FakeChannelServer(channel, args.port)
    print(f"fake payment channel on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
