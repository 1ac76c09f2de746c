"""KPJ numbers from BPJS Ketenagakerjaan's core system (SMILE), or from our local generator.

Real KPJ numbers (and payment codes) are issued by BPJS's core system; the portal needs two
things from it: a number for a new participant, and a look-up of a number. `issuer()` returns
the implementation settings.KPJ_ISSUER names:

- ``local`` (the default; development, demos, tests): enrollment/kpj.py's generator, 11 digits
  with a Luhn check digit from a keyed permutation of a sequence. Well-formed and unguessable,
  but **not BPJS numbers**: the participant card says so while this issuer is in use.
- ``http``: the core system's HTTP interface at settings.CORE_SYSTEM_URL, with a bearer token
  (CORE_SYSTEM_TOKEN) and a timeout (CORE_SYSTEM_TIMEOUT seconds):

      POST {url}/kpj/batch   {"requests": [{"request_id", "nik", "full_name", "birth_date"}, ...]}
        -> 200 {"kpj_numbers": ["...", ...]}  (in request order; idempotent per request_id)
      GET  {url}/kpj/{kpj}   -> 200 {"kpj_number", "status", "registered_on"} | 404

  `request_id` is the NIK's keyed digest (enrollment/pii.py), so a registration retried after
  a failure gets the number the core already gave that person. A connection error, a timeout,
  a 5xx or an answer that is not 11 valid digits per request is CoreUnavailable: the
  registration is refused with code `core_unavailable` (the API answers 503) and nothing is
  written. docs/api.md "KPJ numbers and the core system" and docs/operations.md describe it.

tests/enrollment/test_core_system.py runs both against a fake core server
(enrollment/fake_core.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from bpjsportal.core.api.errors import FieldError

from . import pii
from .errors import RegistrationError
from .kpj import is_valid_kpj, next_kpj_numbers


@dataclass(frozen=True)
class NewHolder:
    """What the core system needs to issue a number for a person."""

    nik: str
    full_name: str
    birth_date: date


@dataclass(frozen=True)
class CoreRecord:
    kpj_number: str
    status: str
    registered_on: date | None
    source: str  # "local" or "core"


class CoreUnavailable(RegistrationError):
    """The core system could not issue a number now; nothing was written."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            [
                FieldError(
                    "kpj_number",
                    "core_unavailable",
                    _(
                        "BPJS's core system did not answer; no KPJ number could be issued. "
                        "Nothing was saved: try again in a few minutes."
                    ),
                )
            ]
        )


class Issuer(Protocol):
    name: str
    redraws: bool  # a number refused as already held may be drawn again

    def issue(self, holders: list[NewHolder]) -> list[str]: ...

    def look_up(self, kpj_number: str) -> CoreRecord | None: ...


class LocalIssuer:
    """enrollment/kpj.py's generator (development): not BPJS numbers."""

    name = "local"
    redraws = True

    def issue(self, holders: list[NewHolder]) -> list[str]:
        return next_kpj_numbers(len(holders))

    def look_up(self, kpj_number: str) -> CoreRecord | None:
        from .models import Participant

        found = Participant.objects.filter(kpj_number=kpj_number).values_list("created_at").first()
        if found is None:
            return None
        return CoreRecord(kpj_number, "registered", found[0].date(), "local")


class HttpIssuer:
    """The core system's HTTP interface (module docstring)."""

    name = "http"
    redraws = False  # the core's number for a person is the number: a clash is an error

    def __init__(self, url: str, token: str, timeout: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured("CORE_SYSTEM_URL must be an http(s) URL")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def _call(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        try:
            response = httpx.request(
                method,
                self.url + path,
                json=body,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:  # refused, timed out, reset
            raise CoreUnavailable(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise CoreUnavailable(f"HTTP {response.status_code}")
        try:
            return response.status_code, response.json() if response.content else None
        except ValueError as exc:  # not JSON
            raise CoreUnavailable("not JSON") from exc

    def issue(self, holders: list[NewHolder]) -> list[str]:
        if not holders:
            return []
        body = {
            "requests": [
                {
                    "request_id": pii.nik_digest(h.nik).hex(),
                    "nik": h.nik,
                    "full_name": h.full_name,
                    "birth_date": h.birth_date.isoformat(),
                }
                for h in holders
            ]
        }
        status, answer = self._call("POST", "/kpj/batch", body)
        numbers = answer.get("kpj_numbers") if isinstance(answer, dict) else None
        if (
            status != 200
            or not isinstance(numbers, list)
            or len(numbers) != len(holders)
            or not all(isinstance(n, str) and is_valid_kpj(n) for n in numbers)
        ):
            raise CoreUnavailable(f"unexpected answer (HTTP {status})")
        return numbers

    def look_up(self, kpj_number: str) -> CoreRecord | None:
        if not is_valid_kpj(kpj_number):
            return None
        status, answer = self._call("GET", f"/kpj/{kpj_number}")
        if status == 404:
            return None
        if status != 200 or not isinstance(answer, dict):
            raise CoreUnavailable(f"unexpected answer (HTTP {status})")
        day = answer.get("registered_on")
        return CoreRecord(
            str(answer.get("kpj_number", kpj_number)),
            str(answer.get("status", "")),
            date.fromisoformat(day) if isinstance(day, str) and day else None,
            "core",
        )


def issuer() -> Issuer:
    """The issuer settings.KPJ_ISSUER names ("local" or "http")."""
    kind = str(getattr(settings, "KPJ_ISSUER", "local") or "local")
    if kind == "local":
        return LocalIssuer()
    if kind == "http":
        return HttpIssuer(
            str(getattr(settings, "CORE_SYSTEM_URL", "") or ""),
            str(getattr(settings, "CORE_SYSTEM_TOKEN", "") or ""),
            float(getattr(settings, "CORE_SYSTEM_TIMEOUT", 10)),
        )
    raise ImproperlyConfigured("KPJ_ISSUER must be 'local' or 'http'")


def numbers_are_bpjs() -> bool:
    """True when KPJ numbers come from the core system (the card and pages say which)."""
    return str(getattr(settings, "KPJ_ISSUER", "local") or "local") == "http"
