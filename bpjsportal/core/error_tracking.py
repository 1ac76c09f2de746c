"""The optional error tracker (docs/operations.md, "Errors"): with `SENTRY_DSN` set, unhandled
errors of web requests and Celery tasks go to Sentry (or a compatible service, e.g. GlitchTip)
— with the personal data masked by the same rules as the logs (bpjsportal/core/logging.py).

What is sent, and what is not:
- no request bodies, cookies, headers' values of Authorization/Cookie, user e-mail or IP
  (`send_default_pii=False`, `max_request_body_size="never"`), no local variables of the
  stack frames (`include_local_variables=False`: a frame of the registration holds the NIK);
- every string left in the event (message, exception values, breadcrumbs, URL, query string,
  tags, extra) passes `mask_text` in `before_send` / `before_breadcrumb`;
- the user is the request's id and principal (username or API client name), never more.
"""

from __future__ import annotations

from typing import Any, cast

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from .logging import mask_text

# keys whose values are dropped whole, wherever they appear in an event
_DROP = {"cookies", "data", "env", "vars", "ip_address", "email"}


def scrub(value: Any) -> Any:
    """`value` (an event or a part of one) with every string masked and the _DROP keys gone."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def before_send(event: Event, _hint: Hint) -> Event | None:
    # imported when an event is sent: settings.py imports this module before Django's app
    # registry is ready, and request_id reaches the audit context (pghistory)
    from . import request_id

    scrubbed: dict[str, Any] = scrub(event)
    headers = scrubbed.get("request", {}).get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if name.lower() in ("authorization", "cookie", "x-csrftoken", "x-api-key"):
                headers[name] = "***"
    rid = request_id.current()
    if rid:
        scrubbed.setdefault("tags", {})["request_id"] = rid
    return cast(Event, scrubbed)


def before_breadcrumb(crumb: Breadcrumb, _hint: BreadcrumbHint) -> Breadcrumb | None:
    return cast(Breadcrumb, scrub(crumb))


def init(dsn: str, *, environment: str, release: str, traces_sample_rate: float = 0.0) -> None:
    """Start the SDK (settings.py calls it when SENTRY_DSN is set)."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=traces_sample_rate,
    )
