"""KPJ numbers from the core system: the local generator (development) and the HTTP adapter,
both against a fake core server (enrollment/fake_core.py) - numbers, idempotent retries,
look-ups, bulk registration, and every fault refusing the registration with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from enrollment import core_system
from enrollment.core_system import CoreUnavailable, HttpIssuer, LocalIssuer, NewHolder
from enrollment.fake_core import FakeCoreServer
from enrollment.kpj import is_valid_kpj
from enrollment.models import Participant
from enrollment.services import register_participants_bulk
from tests.conftest import BORN, login_as, nik_for, registration_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def core(settings: Any) -> Iterator[FakeCoreServer]:
    server = FakeCoreServer(0, token="test-core-token")
    server.start_in_thread()
    settings.KPJ_ISSUER = "http"
    settings.CORE_SYSTEM_URL = server.url
    settings.CORE_SYSTEM_TOKEN = "test-core-token"
    settings.CORE_SYSTEM_TIMEOUT = 1.0
    yield server
    server.shutdown()
    server.server_close()


def test_the_local_generator_is_the_default_and_the_card_says_so(
    register: Any, admin_user: Any
) -> None:
    assert isinstance(core_system.issuer(), LocalIssuer)
    assert not core_system.numbers_are_bpjs()
    p = register()
    assert is_valid_kpj(p.kpj_number)
    record = core_system.issuer().look_up(p.kpj_number)
    assert record is not None and (record.kpj_number, record.source) == (p.kpj_number, "local")
    assert core_system.issuer().look_up("00000000000") is None
    card = login_as(Client(), admin_user).get(reverse("enrollment:card", args=[p.pk]))
    assert b'data-testid="kpj-local"' in card.content


def test_numbers_come_from_the_core_system(register: Any, core: FakeCoreServer,
                                           admin_user: Any) -> None:  # fmt: skip
    p = register()
    assert p.kpj_number in core.state.records and p.kpj_number.startswith("77")
    assert core.state.requests == 1
    record = core_system.issuer().look_up(p.kpj_number)
    assert record is not None and (record.status, record.source) == ("active", "core")
    assert core_system.issuer().look_up("10000000018") is None  # unknown to the core: 404
    card = login_as(Client(), admin_user).get(reverse("enrollment:card", args=[p.pk]))
    assert b'data-testid="kpj-local"' not in card.content


def test_a_retry_for_the_same_person_gets_the_same_number(core: FakeCoreServer) -> None:
    """The request id is the NIK's keyed digest: a registration retried after a failure is
    given the number the core already issued, not a second one."""
    issuer = core_system.issuer()
    someone = NewHolder(nik_for(serial=71), "Siti Aminah", BORN)
    other = NewHolder(nik_for(serial=72), "Rudi", BORN)
    first = issuer.issue([someone])
    assert issuer.issue([someone]) == first
    both = issuer.issue([other, someone])
    assert both[1] == first[0] and both[0] != first[0]
    assert len(core.state.records) == 2


def test_bulk_registration_takes_the_core_numbers(refdata: Any, core: FakeCoreServer) -> None:
    rows = [registration_data(nik=nik_for(serial=80 + i)) for i in range(5)]
    out = register_participants_bulk(rows)
    assert all(isinstance(o, Participant) for o in out)
    numbers = [o.kpj_number for o in out if isinstance(o, Participant)]
    assert set(numbers) <= set(core.state.records) and len(set(numbers)) == 5
    assert core.state.requests == 1  # one call for the batch


@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "wrong_token"])
def test_a_core_fault_refuses_the_registration_and_writes_nothing(
    register: Any, core: FakeCoreServer, settings: Any, mode: str
) -> None:
    if mode == "wrong_token":
        settings.CORE_SYSTEM_TOKEN = "not-the-token"
    else:
        core.state.mode, core.state.delay = mode, 3.0
    before = Participant.objects.count()
    with pytest.raises(CoreUnavailable) as refused:
        register()
    assert refused.value.code == "core_unavailable"
    assert Participant.objects.count() == before


def test_a_wrong_issuer_setting_is_a_configuration_error(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.KPJ_ISSUER = "smile"
    with pytest.raises(ImproperlyConfigured):
        core_system.issuer()
    with pytest.raises(ImproperlyConfigured):
        HttpIssuer("ftp://core", "t", 1)


def test_the_api_answers_503_when_the_core_is_down(core: FakeCoreServer, admin_user: Any) -> None:
    from enrollment.api.clients import create_api_client

    token = create_api_client(name="Core test", scope="admin").token
    core.state.mode = "down"
    body = {**registration_data(nik=nik_for(serial=90)), "birth_date": BORN.isoformat()}
    body.pop("channel")
    r = Client().post("/api/v1/participants/", body, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Token {token}")  # fmt: skip
    assert r.status_code == 503 and r.json()["code"] == "core_unavailable"
    assert not Participant.objects.filter(full_name="Budi Santoso").exists()


def test_check_deploy_says_when_numbers_are_not_bpjs_numbers(settings: Any) -> None:
    from enrollment.checks import check_kpj_issuer_deploy

    settings.KPJ_ISSUER = "local"
    assert [m.id for m in check_kpj_issuer_deploy()] == ["enrollment.W002"]
    settings.KPJ_ISSUER, settings.CORE_SYSTEM_URL = "http", ""
    assert [m.id for m in check_kpj_issuer_deploy()] == ["enrollment.E006"]
    settings.CORE_SYSTEM_URL = "https://core.example.id"
    assert check_kpj_issuer_deploy() == []
