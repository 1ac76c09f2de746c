"""Message channels behind one interface: SMS and WhatsApp through the HTTP gateway, email through
Django's email backend; a per-channel rate limit shared by all workers (a Redis token bucket).

Gateway protocol (docs/reminders.md): POST {REMINDER_GATEWAY_URL}/messages with
`Authorization: Bearer {REMINDER_GATEWAY_KEY}` and JSON {"channel", "to", "text", "reference"};
2xx -> {"id": "<message id>"}. `reference` is our idempotency key: the gateway answers a repeated
reference with the first message's id and does not send again. 429, 5xx, timeouts and refused
or dropped connections are temporary (retried with backoff), and so are 401/403 (a wrong key
must not fail every message); other 4xx are permanent.

Batches (REMINDER_GATEWAY_BATCH > 1, for gateways with a bulk endpoint, as the national SMS
aggregators have): POST {URL}/messages/batch with {"messages": [<message>, ...]} -> 200
{"results": [{"reference", "status", "id" | "error"}, ...]}, one result per message in order,
each with the status the single-message endpoint would have answered. The request's own failure
(unreachable, timeout, 401/403, 429, 5xx) is temporary for every message in it.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.mail import EmailMessage

from ..models import ReminderChannel


class GatewayError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class GatewayTemporaryError(GatewayError):
    """Worth retrying later: the gateway is down, slow, overloaded (429) or failing (5xx)."""


class GatewayPermanentError(GatewayError):
    """Retrying will not help (bad number, refused content, 4xx): try the next channel or fail."""


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str
    to: str
    text: str
    reference: str  # idempotency key, stable across retries
    subject: str = ""


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> str:
        """Send; return the gateway's message id. Raises GatewayTemporaryError/PermanentError."""
        ...

    def send_many(self, messages: list[OutgoingMessage]) -> list[str | GatewayError]:
        """Send several; per message the id or the error (in order). Raises
        GatewayTemporaryError when the whole request failed (nothing is known to be sent)."""
        ...


SendOutcome = str | GatewayError


def send_each(ch: Channel, messages: list[OutgoingMessage]) -> list[SendOutcome]:
    """`send_many` for a channel that sends one message at a time: a permanent refusal is that
    message's result; a temporary error stops (raised: the gateway is not answering)."""
    out: list[SendOutcome] = []
    for message in messages:
        try:
            out.append(ch.send(message))
        except GatewayPermanentError as exc:
            out.append(exc)
    return out


_local = threading.local()


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    """One keep-alive connection per thread and gateway URL."""
    key = (url, timeout)
    conn: http.client.HTTPConnection | None = getattr(_local, "conns", {}).get(key)
    if conn is None:
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        _local.conns = {**getattr(_local, "conns", {}), key: conn}
    return conn


def _drop_connection(url: str, timeout: float) -> None:
    conns = getattr(_local, "conns", {})
    conn = conns.pop((url, timeout), None)
    if conn is not None:
        conn.close()


class HttpGatewayChannel:
    """SMS or WhatsApp through the HTTP gateway."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _wire(self, message: OutgoingMessage) -> dict[str, str]:
        return {
            "channel": self.name,
            "to": message.to,
            "text": message.text,
            "reference": message.reference,
        }

    def _post(self, endpoint: str, data: object) -> tuple[int, bytes]:
        """POST JSON to the gateway; the status and body. Raises GatewayTemporaryError when it
        cannot be reached, times out, refuses our key, or answers 429 or 5xx."""
        url = settings.REMINDER_GATEWAY_URL.rstrip("/")
        timeout = float(settings.REMINDER_GATEWAY_TIMEOUT)
        body = json.dumps(data).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings.REMINDER_GATEWAY_KEY}",
        }
        path = urlsplit(url).path + endpoint
        for attempt in (1, 2):  # a stale keep-alive connection gets one fresh try
            conn = _connection(url, timeout)
            try:
                if conn.sock is None:
                    conn.connect()
                    sock: socket.socket = conn.sock  # type: ignore[assignment]
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except TimeoutError as exc:
                _drop_connection(url, timeout)
                raise GatewayTemporaryError(f"gateway timeout: {exc}") from exc
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                _drop_connection(url, timeout)
                if attempt == 2 or isinstance(exc, ConnectionRefusedError):
                    raise GatewayTemporaryError(f"gateway unreachable: {exc!r}") from exc
        status = response.status
        if response.will_close:
            _drop_connection(url, timeout)
        if _temporary(status):
            raise GatewayTemporaryError(f"gateway answered {status}", status=status)
        if status in (401, 403):  # our key, not the message: keep everything queued, stop calling
            raise GatewayTemporaryError(f"gateway refused our key ({status})")
        return status, payload

    def send(self, message: OutgoingMessage) -> str:
        status, payload = self._post("/messages", self._wire(message))
        if not 200 <= status < 300:
            raise GatewayPermanentError(
                f"gateway refused ({status}): {payload[:120]!r}", status=status
            )
        try:
            return str(json.loads(payload)["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayTemporaryError(f"gateway answer unreadable: {payload[:120]!r}") from exc

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendOutcome]:
        if len(messages) == 1:  # the caller chunks by REMINDER_GATEWAY_BATCH (1: no batches)
            return send_each(self, messages)
        status, payload = self._post(
            "/messages/batch", {"messages": [self._wire(m) for m in messages]}
        )
        if not 200 <= status < 300:  # the request itself refused: every message in it
            refused = GatewayPermanentError(
                f"gateway refused the batch ({status}): {payload[:120]!r}", status=status
            )
            return [refused for _m in messages]
        try:
            results = json.loads(payload)["results"]
            if len(results) != len(messages):
                raise ValueError("one result per message expected")
            return [_outcome(item) for item in results]
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayTemporaryError(f"gateway answer unreadable: {payload[:120]!r}") from exc


def _temporary(status: int) -> bool:
    """Overloaded or failing (429, 5xx): worth retrying later, for a request or one message."""
    return status == 429 or status >= 500


def _outcome(item: dict[str, object]) -> SendOutcome:
    """One message's result in a batch answer, read like the single-message endpoint's."""
    status = int(str(item["status"]))
    if 200 <= status < 300:
        return str(item["id"])
    error = f"gateway refused ({status}): {str(item.get('error', ''))[:120]}"
    if _temporary(status):
        return GatewayTemporaryError(error, status=status)
    return GatewayPermanentError(error, status=status)


class EmailChannel:
    """Email through Django's email backend; no delivery callbacks (stays `sent`)."""

    name = ReminderChannel.EMAIL.value

    def send(self, message: OutgoingMessage) -> str:
        if not message.to:
            raise GatewayPermanentError("no email address")
        message_id = f"email-{message.reference}-{uuid.uuid4().hex[:8]}"
        mail = EmailMessage(subject=message.subject, body=message.text, to=[message.to], headers={})
        mail.extra_headers["X-BPU-Reference"] = message.reference
        try:
            mail.send(fail_silently=False)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise GatewayTemporaryError(f"mail server: {exc!r}") from exc
        return message_id

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendOutcome]:
        return send_each(self, messages)


def channel(name: str) -> Channel:
    if name == ReminderChannel.EMAIL:
        return EmailChannel()
    if name in (ReminderChannel.SMS, ReminderChannel.WHATSAPP):
        return HttpGatewayChannel(name)
    raise GatewayPermanentError(f"unknown channel {name!r}")


# The fallback order after the preferred channel.
FALLBACK_ORDER = (ReminderChannel.WHATSAPP.value, ReminderChannel.SMS.value, "email")


def channels_for(preferred: str, *, has_email: bool) -> list[str]:
    """The preferred channel first, then the others that can reach the participant."""
    order = [preferred] + [c for c in FALLBACK_ORDER if c != preferred]
    return [c for c in order if c != ReminderChannel.EMAIL or has_email]


# --- rate limit -------------------------------------------------------------------------------
_BUCKET_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = (want - tokens) / rate
end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', key, 3600)
return tostring(wait)
"""


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def acquire(channel_name: str, tokens: int = 1) -> float:
    """Take `tokens` from the channel's bucket, sleeping until they are available. Returns the
    seconds slept. The bucket lives in Redis under the cache key prefix, shared by all workers."""
    rate = float(settings.REMINDER_RATE_LIMITS.get(channel_name, 0) or 0)
    if rate <= 0:
        return 0.0
    key = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:reminders:bucket:{channel_name}"
    burst = max(float(tokens), rate)  # at most one second's worth at once
    client = _redis()
    slept = 0.0
    while True:
        wait = float(client.eval(_BUCKET_LUA, 1, key, rate, burst, time.time(), tokens))
        if wait <= 0:
            return slept
        time.sleep(min(wait, 1.0))
        slept += min(wait, 1.0)


class RateLimiter:
    """Takes tokens from the shared buckets a few at a time (one Redis call per `chunk` messages
    rather than per message); unused tokens of a chunk are simply not used."""

    def __init__(self, chunk: int = 20) -> None:
        self.chunk = chunk
        self.left: dict[str, int] = {}

    def take(self, channel_name: str) -> None:
        if self.left.get(channel_name, 0) <= 0:
            acquire(channel_name, self.chunk)
            self.left[channel_name] = self.chunk
        self.left[channel_name] -= 1
