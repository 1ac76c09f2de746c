"""The participant's own page (/me/): a one-time code to the registered phone, answers that
never tell whether a KPJ or NIK exists, expiry, the lock after wrong tries, send limits per
participant and per address, a short session of the participant's alone, and what the page
offers (status in words, amount due, receipts, bills, reminders on/off)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from contributions import self_service
from contributions.models import Bill, ParticipantCode, ReminderPreference
from contributions.quotes import quote_payment
from contributions.self_views import SEEN

pytestmark = pytest.mark.django_db
KNOWN = "424242"


def browser() -> Client:
    """A client from a network address of its own, with no requests counted yet (the
    per-address limit is counted in Redis, which outlives a test run)."""
    from django.core.cache import cache

    address = "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))
    cache.delete(self_service.address_key(address))
    return Client(REMOTE_ADDR=address)


@pytest.fixture
def known_code(monkeypatch: pytest.MonkeyPatch) -> str:
    """Codes are random; here the draw is pinned so the test can type the code it was sent."""
    monkeypatch.setattr(self_service, "new_code", lambda: KNOWN)
    return KNOWN


def ask(client: Client, number: str, birth: Any) -> Any:
    return client.post("/me/login/", {"number": number, "birth_date": str(birth)})


def page_text(response: Any) -> str:
    """The page without its CSRF tokens (each browser has its own)."""
    return re.sub(r"\b[A-Za-z0-9]{64}\b", "<csrf>", response.content.decode())


def logged_in(client: Client, participant: Any) -> Client:
    assert ask(client, participant.kpj_number, participant.birth_date).status_code == 302
    assert client.post("/me/code/", {"code": KNOWN}).status_code == 302
    return client


def test_the_answer_never_tells_whether_a_participant_exists(make_participant: Any) -> None:
    p = make_participant()
    answers = []
    for number, birth in (
        (p.kpj_number, p.birth_date),  # right
        (p.kpj_number, p.birth_date - timedelta(days=1)),  # wrong birth date
        ("99999999999", p.birth_date),  # no such KPJ
        ("3273011507900099", p.birth_date),  # no such NIK
    ):
        c = browser()
        r = ask(c, number, birth)
        assert r.status_code == 302 and r["Location"] == "/me/code/"
        code_page = c.get("/me/code/")
        wrong = c.post("/me/code/", {"code": "000000"})
        answers.append((page_text(code_page), wrong.status_code, page_text(wrong)))
    assert all(a == answers[0] for a in answers)
    assert ParticipantCode.objects.filter(participant=p).count() == 1


def test_bad_input_is_a_clear_error_and_sends_nothing(make_participant: Any) -> None:
    make_participant()
    r = browser().post("/me/login/", {"number": "12ab", "birth_date": "31-02-1990"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "KPJ" in html and "NIK" in html and "lahir" in html  # Indonesian by default
    assert not ParticipantCode.objects.exists()


def test_the_code_logs_in_once_and_the_page_shows_the_participants_own_facts(
    make_participant: Any, known_code: str, pay: Any
) -> None:
    p = make_participant(full_name="Made Wirawan")
    payment, _ = pay(p)
    other = make_participant()
    other_payment, _ = pay(other)
    c = logged_in(browser(), p)
    home = c.get("/me/")
    html = home.content.decode()
    assert home["Cache-Control"] == "no-store"
    assert "Made" in html and p.kpj_number in html and other.kpj_number not in html
    assert 'data-status="active"' in html and "terlindungi" in html
    assert c.get(f"/me/receipts/{payment.pk}/").status_code == 200
    assert c.get(f"/me/receipts/{other_payment.pk}/").status_code == 404
    # the code was used: typing it again in another browser does nothing
    d = browser()
    ask(d, p.kpj_number, p.birth_date)
    assert ParticipantCode.objects.filter(participant=p, used_at__isnull=False).count() == 1


def test_a_code_expires_after_five_minutes(make_participant: Any, known_code: str) -> None:
    p = make_participant()
    c = browser()
    ask(c, p.kpj_number, p.birth_date)
    ParticipantCode.objects.filter(participant=p).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    r = c.post("/me/code/", {"code": KNOWN})
    assert r.status_code == 400 and "kedaluwarsa" in r.content.decode()
    assert "self_service_participant" not in c.session


def test_five_wrong_tries_kill_the_code_and_lock_new_ones(
    make_participant: Any, known_code: str
) -> None:
    p = make_participant()
    c = browser()
    ask(c, p.kpj_number, p.birth_date)
    for _ in range(4):
        assert c.post("/me/code/", {"code": "111111"}).status_code == 400
    fifth = c.post("/me/code/", {"code": "111111"})
    assert fifth.status_code == 400 and 'data-testid="me-login"' in fifth.content.decode()
    row = ParticipantCode.objects.get(participant=p)
    assert row.tries == 5 and row.locked_until and row.locked_until > timezone.now()
    # the right code no longer works, and no new code is issued while locked
    d = browser()
    ask(d, p.kpj_number, p.birth_date)
    assert d.post("/me/code/", {"code": KNOWN}).status_code == 400
    assert ParticipantCode.objects.filter(participant=p).count() == 1


def test_sends_are_limited_per_participant_and_per_address(
    make_participant: Any, settings: Any
) -> None:
    p = make_participant()
    for _ in range(5):
        ask(browser(), p.kpj_number, p.birth_date)
    assert ParticipantCode.objects.filter(participant=p).count() == 3  # per 15 minutes
    settings.SELF_SERVICE_REQUESTS_PER_ADDRESS = 2
    c = browser()
    assert ask(c, "99999999999", p.birth_date).status_code == 302
    assert ask(c, "99999999998", p.birth_date).status_code == 302
    third = ask(c, "99999999997", p.birth_date)
    assert third.status_code == 429 and "jaringan" in third.content.decode()


def test_the_session_ends_after_15_idle_minutes(make_participant: Any, known_code: str) -> None:
    p = make_participant()
    c = logged_in(browser(), p)
    session = c.session
    session[SEEN] = int(timezone.now().timestamp()) - 901
    session.save()
    page = c.get("/me/")
    assert 'data-testid="me-login"' in page.content.decode()
    assert c.get(f"/me/receipts/{1}/").status_code == 404


def test_pay_3_months_gives_a_bill_priced_by_the_quote(
    make_participant: Any, known_code: str
) -> None:
    p = make_participant()
    c = logged_in(browser(), p)
    r = c.post("/me/pay/", {"months": "3"})
    bill = Bill.objects.get(participant=p)
    quote = quote_payment(p, p.coverage, months=3, as_of=timezone.localdate())
    assert r.status_code == 200 and (bill.months, bill.amount) == (3, quote.amount)
    assert f'data-code="{bill.code}"' in r.content.decode()
    assert c.post("/me/pay/", {"months": "5"}).status_code == 400
    assert browser().post("/me/pay/", {"months": "3"}).status_code == 302  # not logged in


def test_reminders_can_be_stopped_and_restarted(make_participant: Any, known_code: str) -> None:
    p = make_participant()
    c = logged_in(browser(), p)
    c.post("/me/reminders/", {"reminders": "off"})
    assert ReminderPreference.objects.get(pk=p.pk).opted_out_at is not None
    c.post("/me/reminders/", {"reminders": "on"})
    assert ReminderPreference.objects.get(pk=p.pk).opted_out_at is None


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_code_comes_by_sms_through_a_real_worker(
    tx_refdata: Any, make_participant: Any, gateway: Any
) -> None:
    from tests.conftest import start_worker
    from tests.contributions.test_reminders_worker import wait_for

    p = make_participant(phone="+6281277770001")
    worker, _node = start_worker()
    try:
        c = browser()
        ask(c, p.kpj_number, p.birth_date)
        wait_for(lambda: any(m["to"] == p.phone for m in list(gateway.state.messages)), 60)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    [sms] = [m for m in gateway.state.messages if m["to"] == p.phone]
    code = re.search(r"\b(\d{6})\b", sms["text"])
    assert code and "kode" in sms["text"]
    assert c.post("/me/code/", {"code": code.group(1)}).status_code == 302
    assert 'data-testid="me-home"' in c.get("/me/").content.decode()
