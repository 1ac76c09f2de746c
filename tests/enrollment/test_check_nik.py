"""The NIK check while typing (/register/check-nik/) answers "already registered" only for a
participant the user may see; for anyone else it answers exactly as for a free NIK, and it is
rate-limited per user. A registration that hits a NIK held outside the scope names no KPJ and
no branch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from bpjsportal.core import redis_status
from tests.conftest import login_as, nik_for
from tests.enrollment.test_views import form_data
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("refdata")

BORN = date(1990, 5, 17)


def client_for(user: Any) -> Client:
    return login_as(Client(HTTP_ACCEPT_LANGUAGE="en"), user)


def check(c: Client, nik: str) -> Any:
    return c.post("/register/check-nik/", {"nik": nik})


@pytest.fixture(autouse=True)
def _counts_start_at_zero(agent: Any, other_agent: Any, supervisor: Any) -> Iterator[None]:
    from enrollment.nik_check import counter_key

    users = (agent, other_agent, supervisor)
    cache.delete_many([counter_key(u) for u in users])
    yield
    cache.delete_many([counter_key(u) for u in users])


def test_a_participant_in_scope_is_already_registered_with_a_link(
    agent: Any, register: Any
) -> None:
    p = register(nik=nik_for(BORN, serial=11), registered_by=agent.staff)
    r = check(client_for(agent), p.nik)
    body = r.content.decode()
    assert r.status_code == 200
    assert "already registered" in body and f'href="/participants/{p.pk}/"' in body
    assert p.kpj_number in body


def test_a_nik_outside_the_scope_is_answered_as_a_free_one(
    agent: Any, other_agent: Any, supervisor: Any, register: Any
) -> None:
    elsewhere = register(nik=nik_for(BORN, serial=12), registered_by=other_agent.staff)
    same_branch = register(nik=nik_for(BORN, serial=13), registered_by=supervisor.staff)
    unregistered = nik_for(BORN, serial=14)
    c = client_for(agent)
    free = check(c, unregistered)
    assert free.status_code == 200 and "Valid NIK" in free.content.decode()
    for nik in (elsewhere.nik, same_branch.nik):  # another branch; the agent's own branch
        r = check(c, nik)
        assert (r.status_code, r.content) == (free.status_code, free.content)
    # the supervisor sees the branch: its participant is "already registered" for them
    assert "already registered" in check(client_for(supervisor), same_branch.nik).content.decode()
    assert "already registered" not in check(client_for(supervisor), elsewhere.nik).content.decode()


def test_registering_a_nik_held_outside_the_scope_names_no_kpj_or_branch(
    agent: Any, other_agent: Any, register: Any
) -> None:
    elsewhere = register(nik=nik_for(BORN, serial=15), registered_by=other_agent.staff)
    r = client_for(agent).post("/register/", form_data(nik=elsewhere.nik))
    body = r.content.decode()
    assert r.status_code == 400
    assert "cannot be registered" in body
    assert elsewhere.kpj_number not in body and "Surabaya" not in body


def test_registering_a_nik_held_in_scope_names_the_participant(agent: Any, register: Any) -> None:
    own = register(nik=nik_for(BORN, serial=16), registered_by=agent.staff)
    r = client_for(agent).post("/register/", form_data(nik=own.nik))
    assert r.status_code == 400 and own.kpj_number in r.content.decode()


def test_checks_are_limited_per_user_with_a_clear_message(
    agent: Any, supervisor: Any, settings: Any
) -> None:
    settings.NIK_CHECK_RATE = "3/min"
    c = client_for(agent)
    nik = nik_for(BORN, serial=17)
    for _ in range(3):
        assert check(c, nik).status_code == 200
    limited = check(c, nik)
    assert limited.status_code == 429
    assert "Too many NIK checks" in limited.content.decode()
    assert "Valid NIK" not in limited.content.decode()
    assert int(limited["Retry-After"]) == 60
    assert check(client_for(supervisor), nik).status_code == 200  # another user's own count
    # a NIK still being typed is not a look-up and is not refused
    assert check(c, "3273").status_code == 200


def test_the_limit_speaks_indonesian(agent: Any, settings: Any) -> None:
    settings.NIK_CHECK_RATE = "1/hour"
    c = login_as(Client(HTTP_ACCEPT_LANGUAGE="id"), agent)
    check(c, nik_for(BORN, serial=18))
    body = check(c, nik_for(BORN, serial=18)).content.decode()
    assert "Terlalu banyak pemeriksaan NIK" in body and "jam" in body


def test_the_limit_fails_open_while_redis_is_down(
    agent: Any, settings: Any, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from enrollment import nik_check

    settings.NIK_CHECK_RATE = "1/min"
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    monkeypatch.setattr(nik_check, "_warned_at", 0.0)
    redis_status.reset()
    try:
        c = client_for(agent)
        for _ in range(3):
            r = check(c, nik_for(BORN, serial=19))
            assert r.status_code == 200 and "Valid NIK" in r.content.decode()
        assert "NIK check limit not counted" in caplog.text
    finally:
        redis_status.reset()
