"""A stand-in for BPJS's core system (SMILE) as enrollment/core_system.py's HttpIssuer calls it:
`POST /kpj/batch` issues numbers (the same number again for a request_id it has seen), `GET
/kpj/{kpj}` looks one up. For tests and demos only - never production.

Faults, by attribute or by `POST /_control {"mode": ...}`: ``ok``, ``down`` (503), ``slow``
(answers after `delay` seconds: a caller's timeout), ``garbage`` (a number that is not 11
valid digits). `requests` counts the calls that reached it; `token` is the bearer it expects
(401 otherwise).

    python -m enrollment.fake_core --port 8099 --token core-dev-token
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from django.utils import timezone

from bpjsportal.core.fpe import luhn_check_digit
from bpjsportal.core.local_http import LocalServer, QuietHandler

DEV_TOKEN = "core-dev-token"  # noqa: S105 - the fake's own, for development only


class CoreState:
    def __init__(self, token: str) -> None:
        self.token = token
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0
        self.by_request: dict[str, str] = {}
        self.records: dict[str, dict[str, str]] = {}
        self._next = 7_700_000_000  # the fake core's own range of bases
        self.lock = threading.Lock()

    def issue(self, request_id: str) -> str:
        with self.lock:
            known = self.by_request.get(request_id)
            if known is not None:
                return known
            self._next += 7
            base = f"{self._next:010d}"
            number = base + luhn_check_digit(base)
            self.by_request[request_id] = number
            self.records[number] = {
                "kpj_number": number,
                "status": "active",
                "registered_on": timezone.localdate().isoformat(),
            }
            return number


class _Handler(QuietHandler):
    server: FakeCoreServer

    def _authorised(self) -> bool:
        state = self.server.state
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            self._json(401, {"error": "unauthorised"})
            return False
        return True

    def _fault(self) -> bool:
        state = self.server.state
        state.requests += 1
        if state.mode == "down":
            self._json(503, {"error": "maintenance"})
            return True
        if state.mode == "slow":
            time.sleep(state.delay)
        return False

    def do_GET(self) -> None:
        if not self._authorised() or self._fault():
            return
        if not self.path.startswith("/kpj/"):
            self._json(404, {"error": "not found"})
            return
        record = self.server.state.records.get(self.path.removeprefix("/kpj/"))
        if record is None:
            self._json(404, {"error": "unknown KPJ"})
        else:
            self._json(200, record)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length) or b"{}")
        state = self.server.state
        if self.path == "/_control":
            state.mode = str(body.get("mode", "ok"))
            state.delay = float(body.get("delay", state.delay))
            self._json(200, {"mode": state.mode})
            return
        if not self._authorised() or self._fault():
            return
        if self.path != "/kpj/batch":
            self._json(404, {"error": "not found"})
            return
        numbers = [state.issue(str(r["request_id"])) for r in body.get("requests", [])]
        if state.mode == "garbage":
            numbers = [n[:-1] for n in numbers]
        self._json(200, {"kpj_numbers": numbers})


class FakeCoreServer(LocalServer):
    def __init__(self, port: int = 0, token: str = DEV_TOKEN) -> None:
        super().__init__(port, _Handler)
        self.state = CoreState(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--token", default=DEV_TOKEN)
    args = parser.parse_args()
    server = FakeCoreServer(args.port, args.token)
    print(f"fake BPJS core system on {server.url}")
    server.serve_forever()


if __name__ == "__main__":
    main()
