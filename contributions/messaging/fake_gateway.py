"""A local stand-in for the SMS/WhatsApp HTTP gateway, for development, tests and benchmarks.

    python -m contributions.messaging.fake_gateway --port 8025 [--key dev-gateway-key]
        [--callback-url http://127.0.0.1:8000/reminders/gateway/callback/]
        [--callback-secret dev-callback-secret]

Speaks the gateway protocol of contributions/messaging/gateways.py (POST /messages, and POST
/messages/batch with one result per message) and de-duplicates on `reference` like the real one
must. Records what it received; can be told to misbehave:
    POST /_control/mode  {"mode": "ok" | "error500" | "error429" | "drop" | "reject400",
                          "delay": seconds, "fail_next": n}   (fail_next: misbehave n times only)
    GET  /                    the latest messages as a page (the demo's phone screen)
    GET  /_control/messages   every accepted message (first sends only; with --keep-last N,
                              the latest N)
    GET  /_control/stats      {"accepted", "duplicates", "requests", "failures"}
    POST /_control/reset
Sends the portal a callback signed as the real gateway signs them (timestamp and body,
contributions/messaging/callback_signature.py), e.g. a participant's STOP or a delivery report:
    POST /_control/callback  {"payload": {"type": "inbound", "from": "0812...", "text": "STOP"},
                              "url": optional (default --callback-url),
                              "timestamp": optional Unix seconds (default now: an old one
                              shows a replay refused)}
    -> {"status": the portal's HTTP status, "body": its JSON answer}
Not for production: no TLS, everything in memory.
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
from collections import deque
from typing import Any

import httpx

from bpjsportal.core.local_http import LocalServer, QuietHandler

from . import callback_signature


class GatewayState:
    def __init__(self, key: str, keep_messages: bool = True, keep_last: int | None = None) -> None:
        self.key = key
        self.keep_messages = keep_messages  # off for benchmarks: count, don't store texts
        self.keep_last = keep_last  # the demo: only the latest messages
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.messages: list[dict[str, Any]] | deque[dict[str, Any]] = (
            deque(maxlen=self.keep_last) if self.keep_last else []
        )
        self.by_reference: dict[str, str] = {}
        self.duplicates = 0
        self.requests = 0
        self.failures = 0
        self.mode = "ok"
        self.delay = 0.0
        self.fail_next: int | None = None

    def count_request(self) -> None:
        with self.lock:
            self.requests += 1

    def misbehaviour(self, *, count_request: bool = True) -> str:
        """The mode to apply to this request, or to one message of a batch (counts down
        `fail_next`)."""
        if count_request:
            self.count_request()
        with self.lock:
            if self.mode == "ok":
                return "ok"
            if self.fail_next is not None:
                if self.fail_next <= 0:
                    return "ok"
                self.fail_next -= 1
            self.failures += 1
            return self.mode

    def accept(self, data: dict[str, Any]) -> tuple[str, bool]:
        """Record a message (once per reference): its id, and whether it was a duplicate."""
        with self.lock:
            existing = self.by_reference.get(data["reference"])
            if existing is not None:
                self.duplicates += 1
                return existing, True
            message_id = f"fg-{len(self.by_reference) + 1}-{data['reference']}"
            self.by_reference[data["reference"]] = message_id
            if self.keep_messages:
                self.messages.append({**data, "id": message_id, "at": time.time()})
            return message_id, False

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": len(self.by_reference),
                "duplicates": self.duplicates,
                "requests": self.requests,
                "failures": self.failures,
            }


class Handler(QuietHandler):
    server: FakeGatewayServer

    def _outbox(self, latest: list[dict[str, Any]]) -> None:
        items = "".join(
            f'<li data-testid="outbox-message"><small>{html.escape(str(m.get("channel")))} → '
            f"{html.escape(str(m.get('to')))}</small><br>{html.escape(str(m.get('text', '')))}</li>"
            for m in latest
        )
        body = (
            '<!doctype html><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>Fake SMS/WhatsApp outbox</title>'
            "<style>body{font-family:sans-serif;max-width:460px;margin:1rem auto;padding:0 1rem}"
            "li{border-bottom:1px solid #ddd;padding:.5rem 0;list-style:none;"
            "overflow-wrap:anywhere}</style>"
            f"<h1>Outbox</h1><ul>{items or '<li>—</li>'}</ul>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/":
            with state.lock:
                latest = list(state.messages)[::-1][:50]
            self._outbox(latest)
        elif self.path == "/_control/messages":
            with state.lock:
                self._json(200, list(state.messages))
        elif self.path == "/_control/stats":
            self._json(200, state.stats())
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        data = self._body()
        if self.path == "/_control/reset":
            with state.lock:
                state.reset()
            self._json(200, {"ok": True})
            return
        if self.path == "/_control/mode":
            with state.lock:
                state.mode = str((data or {}).get("mode", "ok"))
                state.delay = float((data or {}).get("delay", 0))
                fail_next = (data or {}).get("fail_next")
                state.fail_next = int(fail_next) if fail_next is not None else None
            self._json(200, {"ok": True})
            return
        if self.path == "/_control/callback":
            self._send_callback(data)
            return
        if self.path == "/messages/batch":
            self._batch(data)
            return
        if self.path != "/messages":
            self._json(404, {"error": "not found"})
            return
        if not self._authorised():
            return
        mode = state.misbehaviour()
        if self._request_failure(mode):
            return
        if mode == "reject400":
            self._json(400, {"error": "rejected"})
            return
        if not _valid(data):
            self._json(400, {"error": "channel, to and reference are required"})
            return
        message_id, duplicate = state.accept(data)
        self._json(202, {"id": message_id, "duplicate": duplicate})

    def _send_callback(self, data: Any) -> None:
        server = self.server
        if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
            self._json(400, {"error": "payload: a JSON object is required"})
            return
        url = data.get("url") or server.callback_url
        if not url:
            self._json(400, {"error": "url: none given and no --callback-url"})
            return
        body = json.dumps(data["payload"]).encode()
        timestamp = data.get("timestamp")
        headers = callback_signature.headers(
            body, server.callback_secret, int(timestamp) if timestamp is not None else None
        )
        if not url.startswith(("http://", "https://")):
            self._json(400, {"error": "url: http(s) only"})
            return
        try:
            response = httpx.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=10,
            )
            status, answer = response.status_code, response.content
        except httpx.HTTPError as exc:
            self._json(502, {"error": f"callback not delivered: {exc}"})
            return
        try:
            parsed: Any = json.loads(answer or b"null")
        except ValueError:
            parsed = answer.decode("utf-8", "replace")
        self._json(200, {"status": status, "body": parsed})

    def _authorised(self) -> bool:
        state = self.server.state
        if self.headers.get("Authorization") != f"Bearer {state.key}":
            self._json(401, {"error": "bad key"})
            return False
        if state.delay:
            time.sleep(state.delay)
        return True

    def _request_failure(self, mode: str) -> bool:
        """Answer a failure of the whole request (drop, 500, 429); True if one was sent."""
        if mode == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if mode == "error500":
            self._json(500, {"error": "internal"})
            return True
        if mode == "error429":
            self._json(429, {"error": "slow down"})
            return True
        return False

    def _batch(self, data: Any) -> None:
        """POST /messages/batch: the request can fail as a whole (drop, 500, 429, bad key);
        `reject400` refuses messages one by one (each counts against fail_next)."""
        state = self.server.state
        if not self._authorised():
            return
        per_message = state.mode == "reject400"  # refuses messages, not the request
        if per_message:
            state.count_request()
        if self._request_failure("ok" if per_message else state.misbehaviour()):
            return
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            self._json(400, {"error": "messages: a non-empty list is required"})
            return
        results = []
        for item in items:
            reference = item.get("reference") if isinstance(item, dict) else None
            if per_message and state.misbehaviour(count_request=False) == "reject400":
                results.append({"reference": reference, "status": 400, "error": "rejected"})
            elif not _valid(item):
                results.append(
                    {"reference": reference, "status": 400, "error": "channel, to and "
                     "reference are required"}
                )  # fmt: skip
            else:
                message_id, duplicate = state.accept(item)
                results.append(
                    {"reference": reference, "status": 202, "id": message_id,
                     "duplicate": duplicate}
                )  # fmt: skip
        self._json(200, {"results": results})


def _valid(data: Any) -> bool:
    return isinstance(data, dict) and all(
        isinstance(data.get(k), str) and data.get(k) for k in ("channel", "to", "reference")
    )


class FakeGatewayServer(LocalServer):
    def __init__(
        self,
        port: int = 0,
        key: str = "dev-gateway-key",
        keep_messages: bool = True,
        *,
        keep_last: int | None = None,
        callback_url: str = "",
        callback_secret: str = "dev-callback-secret",  # noqa: S107 - the development default
    ) -> None:
        super().__init__(port, Handler)
        self.state = GatewayState(key, keep_messages, keep_last)
        self.callback_url = callback_url
        self.callback_secret = callback_secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--key", default="dev-gateway-key")
    parser.add_argument("--count-only", action="store_true", help="do not keep message texts")
    parser.add_argument("--keep-last", type=int, default=None, help="keep only the latest N")
    parser.add_argument("--callback-url", default="", help="the portal's callback URL")
    parser.add_argument(
        "--callback-secret", default="dev-callback-secret", help="REMINDER_CALLBACK_SECRET"
    )
    args = parser.parse_args()
    server = FakeGatewayServer(
        args.port,
        args.key,
        keep_messages=not args.count_only,
        keep_last=args.keep_last,
        callback_url=args.callback_url,
        callback_secret=args.callback_secret,
    )
    print(f"fake gateway on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
