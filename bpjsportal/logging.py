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
IntegrityError detail ("Key (nik)=(…)") in a traceback, and a URL query string.
"""

from __future__ import annotations

import logging
import re
from typing import Any

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


def mask_text(text: str) -> str:
    """The text with NIKs, phone numbers, tokens and secret values masked."""
    if not text:
        return text
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
    """Celery signal handler (after_setup_logger / after_setup_task_logger)."""
    if logger is not None:
        install_on(logger)
    install_on(logging.getLogger())
