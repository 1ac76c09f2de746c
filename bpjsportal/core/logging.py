"""Logs never hold a full NIK, phone number, API token or password (docs/security.md, "Logs").

`MaskPersonalDataFilter` is installed on every handler in settings.LOGGING and on the handlers
Celery sets up in its worker (bpjsportal/celery.py). It renders the record's message with its
arguments, masks the result and the formatted exception, and keeps only the masked text:

- NIK-like numbers (16 digits, also in 4-digit groups): region prefix and last 2 digits kept;
- Indonesian phone numbers (+62 8…, 62 8…, 08…): prefix and last 2 digits kept;
- API tokens `bpu_<prefix>_<secret>`: the public prefix kept, the secret dropped; also the value
  after `Token`/`Bearer` in an Authorization header;
- values of password/token/secret-like keys: `password=…`, `"password": "…"`, `'token': '…'`.

Masking is on the text, so it also covers a dict or a QueryDict logged as an argument, an
IntegrityError detail ("Key (nik)=(…)") in a traceback, and a URL query string. It also looks
at the text as a server would read it: percent-decoded (repeatedly: double encoding), a `+`
between words as a space, and NFKC-normalised (full-width digits and letters as ASCII). When
that reading reveals something the plain text hid (a NIK as `%EF%BC%93…` in a request line),
the masked reading is logged instead; a line break or other control character that decoding
would produce stays percent-encoded, so a request cannot forge a log line.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

SENSITIVE_KEY_NAMES = (
    r"password\d?|passwd|pwd|secret|token|api[_-]?key|authorization|otp_token"
    r"|csrfmiddlewaretoken|sessionid|old_password|new_password\d"
)
_NIK = re.compile(r"(?<![0-9])(\d{4})[ .-]?(\d{4})[ .-]?(\d{4})[ .-]?(\d{2})(\d{2})(?![0-9])")
_PHONE = re.compile(
    r"(?<![0-9+])(\+62|62|0)[ -]?(8\d{1,2})[ -]?\d{3,4}[ -]?\d{2,4}(\d{2})(?![0-9])"
)
_TOKEN = re.compile(r"\bbpu_([0-9a-f]{8})_[A-Za-z0-9_\-]+")
_AUTH_HEADER = re.compile(r"(?i)\b(Token|Bearer|Basic)\s+[A-Za-z0-9_\-.=+/:]{8,}")
# key = value, key: value, "key": "value", 'key': 'value', key=value&...
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\"']?\b(?:" + SENSITIVE_KEY_NAMES + r")\b[\"']?\s*[:=]\s*)"
    r"(?P<value>\[?\s*(?:\"[^\"]*\"|'[^']*'|[^\s,&;}\]]+)\s*\]?)"
)
MASK = "***"


_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# A "+" joining two words or numbers is a space in a query string (3273+0517+…); a "+62" or a
# "1 + 1" is left alone.
_PLUS_SPACE = re.compile(r"(?<=\w)\+(?=\w)")
_DECODE_ROUNDS = 3  # %2533 -> %33 -> 3: deeper encodings are not read by any server either


def _unescape(match: re.Match[str]) -> str:
    """One run of %XX escapes as UTF-8 text; controls (line breaks…) stay escaped."""
    try:
        decoded = bytes.fromhex(match.group().replace("%", "")).decode("utf-8")
    except UnicodeDecodeError:
        return match.group()
    return "".join(
        quote(c, safe="") if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in decoded
    )


def decoded_view(text: str) -> str:
    """The text as a server reads a URL: percent-decoded, a `+` between words a space,
    NFKC-normalised."""
    for _round in range(_DECODE_ROUNDS):
        view = _PLUS_SPACE.sub(" ", _PERCENT_RUN.sub(_unescape, text))
        view = unicodedata.normalize("NFKC", view)
        if view == text:
            break
        text = view
    return text


def mask_text(text: str) -> str:
    """The text with NIKs, phone numbers, tokens and secret values masked, also those that
    only show once the text is decoded and normalised (decoded_view); then the masked decoded
    text is returned, else the text as it was with its masks."""
    if not text:
        return text
    masked = _mask_plain(text)
    if masked.isascii() and "%" not in masked and "+" not in masked:
        return masked
    view = decoded_view(masked)
    if view != masked:
        masked_view = _mask_plain(view)
        if masked_view != view:
            return masked_view
    return masked


def _mask_plain(text: str) -> str:
    text = _TOKEN.sub(lambda m: f"bpu_{m.group(1)}_{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{MASK}", text)
    text = _NIK.sub(lambda m: f"{m.group(1)}{'*' * 10}{m.group(5)}", text)
    text = _PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}{'*' * 6}{m.group(3)}", text)
    return text


class MaskPersonalDataFilter(logging.Filter):
    """Masks the rendered message, exception text and stack of every record; never drops one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_bpu_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep its parts, masked
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
            # The formatter uses exc_text when set; drop exc_info so nothing re-renders it.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        setattr(record, "_bpu_masked", True)  # noqa: B010 - LogRecord has no such slot
        return True


def install_on(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (e.g. those Celery's worker sets up)."""
    for handler in logger.handlers:
        if not any(isinstance(f, MaskPersonalDataFilter) for f in handler.filters):
            handler.addFilter(MaskPersonalDataFilter())


def install_on_celery_loggers(logger: logging.Logger | None = None, **_kwargs: Any) -> None:
    """Celery signal handler (after_setup_logger / after_setup_task_logger): the mask, the
    request context and the portal's log format on the handlers Celery's worker set up."""
    from django.conf import settings

    from . import request_id

    for target in (logger, logging.getLogger()):
        if target is None:
            continue
        install_on(target)
        request_id.install_on(target)
        for handler in target.handlers:
            handler.setFormatter(
                JsonFormatter()
                if getattr(settings, "LOG_FORMAT", "text") == "json"
                else logging.Formatter(TEXT_FORMAT)
            )


# --- formats (settings.LOGGING: LOG_FORMAT) --------------------------------------------------
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(principal)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, request_id, principal,
    message, and exc_info when there is one. The fields come from the record after the filters
    ran (the personal-data mask, the request context): nothing unmasked reaches the line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "principal": getattr(record, "principal", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)
