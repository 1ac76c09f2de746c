"""API fixtures: clients of every scope with their tokens, and a JSON caller."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.conftest import nik_for, registration_data

_serials = itertools.count(500)


@dataclass
class Caller:
    """Calls the API with one client's token (JSON in, JSON out)."""

    http: Client
    token: str
    client: Any

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"HTTP_AUTHORIZATION": f"Token {self.token}"}
        for k, v in (extra or {}).items():
            headers["HTTP_" + k.upper().replace("-", "_")] = v
        return headers

    def get(self, path: str, params: dict[str, Any] | None = None, **h: str) -> Any:
        return self.http.get(path, params or {}, **self._headers(h or None))

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, (bytes, str)) else json.dumps(body, default=str)
        return self.http.post(path, raw, content_type="application/json", **self._headers(headers))

    def patch(self, path: str, body: Any) -> Any:
        return self.http.patch(
            path,
            json.dumps(body, default=str),
            content_type="application/json",
            **self._headers(None),
        )


@pytest.fixture
def partners(refdata: Any) -> dict[str, Any]:
    from enrollment.models import Partner

    return {
        "combofit": Partner.objects.create(code="COMBOFIT", name="ComboFit", kind="bundle"),
        "gnl": Partner.objects.create(code="GNL", name="GN Lingkaran", kind="sponsor"),
    }


@pytest.fixture
def make_caller(refdata: Any) -> Any:
    from enrollment.api.clients import create_api_client

    def _make(scope: str = "admin", **kw: Any) -> Caller:
        issued = create_api_client(name=f"{scope} client", scope=scope, **kw)
        return Caller(Client(), issued.token, issued.client)

    return _make


@pytest.fixture
def admin_api(make_caller: Any) -> Caller:
    return make_caller("admin")


@pytest.fixture
def partner_api(make_caller: Any, partners: dict[str, Any]) -> Caller:
    return make_caller("partner", partner=partners["combofit"])


@pytest.fixture
def sponsor_api(make_caller: Any, partners: dict[str, Any]) -> Caller:
    return make_caller("partner", partner=partners["gnl"])


@pytest.fixture
def channel_api(make_caller: Any) -> Caller:
    return make_caller("channel", payment_channel="bank")


@pytest.fixture
def agent_api(make_caller: Any, agent: Any) -> Caller:
    return make_caller("agent", agent=agent.staff)


def reg_body(**overrides: Any) -> dict[str, Any]:
    """A valid registration request body (JSON-ready)."""
    data = registration_data()
    data.pop("channel")
    data["birth_date"] = data["birth_date"].isoformat()
    data.update(overrides)
    return data


def next_nik() -> str:
    return nik_for(serial=next(_serials))


@pytest.fixture
def person(admin_api: Caller) -> dict[str, Any]:
    """A participant registered over the API (its JSON; modules may define their own)."""
    r = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    assert r.status_code == 201, r.content
    return r.json()
