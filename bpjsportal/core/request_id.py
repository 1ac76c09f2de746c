"""One id per request, in every log line it causes, in its response and in the Celery tasks it
queues (docs/operations.md, "Logs").

- `RequestIdMiddleware` (first in settings.MIDDLEWARE) takes the `X-Request-ID` a trusted proxy
  or client sent when it looks like an id (8-128 of `A-Z a-z 0-9 . _ : -`; anything else could
  forge a log field, so it is replaced), else makes one (32 hex digits); it is bound for the
  request and returned in the response's `X-Request-ID` header;
- `RequestContextFilter` (on every log handler) adds `request_id` and `principal` (the staff
  username or the API client, as the audit context knows them) to each record: `-` outside a
  request;
- a task published while an id is bound carries it in its message headers, and the worker binds
  it while the task runs, so the worker's log lines of that task carry the request's id;
  tasks queued through the transactional outbox keep it in their row (`OUTBOX_KEY`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse

from . import audit_context

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
TASK_HEADER = "request_id"
# the reserved kwargs key an outbox row keeps the id under (contributions/messaging/outbox.py)
OUTBOX_KEY = "__request_id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
NONE = "-"

_current: ContextVar[str | None] = ContextVar("bpu_request_id", default=None)


def current() -> str | None:
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


def accepted(value: object) -> str | None:
    """`value` if it may be used as a request id as it is, else None."""
    return value if isinstance(value, str) and _VALID.fullmatch(value) else None


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[str | None]:
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def _request_started(environ: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    # From the start of the request to its end (request_finished): Django logs a 4xx/5xx
    # ("Not Found: ...") after the middleware chain has returned.
    _current.set(accepted((environ or {}).get(META_KEY)) or new_id())


def _request_finished(**_kwargs: Any) -> None:
    _current.set(None)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        request_started.connect(_request_started, dispatch_uid="bpu_request_id_started")
        request_finished.connect(_request_finished, dispatch_uid="bpu_request_id_finished")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = current() or accepted(request.META.get(META_KEY)) or new_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        with bound(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


def _principal() -> str:
    context = audit_context.current() or {}
    if context.get("api_client_name"):
        return f"api:{context['api_client_name']}"
    if context.get("username"):
        return str(context["username"])
    if context.get("task"):
        return f"task:{context['task']}"
    if context.get("command"):
        return f"command:{context['command']}"
    return NONE


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `principal` to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current() or NONE
        if not hasattr(record, "principal"):
            record.principal = _principal()
        return True


def install_on(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (those Celery's worker sets up)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
            handler.addFilter(RequestContextFilter())


# --- Celery ------------------------------------------------------------------------------
_task_tokens: dict[str, Token[str | None]] = {}


def _attach(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    request_id = current()
    if headers is not None and request_id and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


def _bind_task(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    context = getattr(task, "request", None)
    # a header of the message is an attribute of the task's context; some Celery versions keep
    # custom ones under `headers` instead
    value = getattr(context, TASK_HEADER, None) or (getattr(context, "headers", None) or {}).get(
        TASK_HEADER
    )
    request_id = accepted(value)
    if task_id and request_id:
        _task_tokens[task_id] = _current.set(request_id)


def _unbind_task(task_id: str | None = None, **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        _current.reset(token)


def connect_celery_signals() -> None:
    before_task_publish.connect(_attach, weak=False, dispatch_uid="bpu_request_id_attach")
    task_prerun.connect(_bind_task, weak=False, dispatch_uid="bpu_request_id_bind")
    task_postrun.connect(_unbind_task, weak=False, dispatch_uid="bpu_request_id_unbind")
