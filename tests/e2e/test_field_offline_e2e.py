"""The field app offline, in Debian's Chromium at 360 px: an agent logs in online, loses the
signal, registers workers and takes cash, reloads, and everything syncs exactly once when the
signal returns (docs/field-app.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from django.utils import timezone, translation

from contributions.models import Coverage, Payment
from enrollment.models import IdempotencyRecord, Participant
from enrollment.nik import MESSAGES as NIK_MESSAGES
from enrollment.nik_check import as_seen_by
from enrollment.services import duplicate_nik_error, register_participant
from tests.conftest import VILLAGE, login, nik_for, registration_data

INSTANT = "2026-06-10T03:00:00Z"  # 10:00 WIB, before the 15th: the month is not yet due
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata"), pytest.mark.clock(INSTANT)]


@pytest.fixture
def field(browser: Any, live_server: Any) -> Iterator[Any]:
    """A phone: a 360-px context whose browser clock is the server's (the rules read the day)."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="id-ID")
    context.clock.set_fixed_time(datetime.fromisoformat(INSTANT.replace("Z", "+00:00")))
    yield context
    context.close()


def _open_app(context: Any, live_server: Any, username: str | None = None) -> Any:
    page = context.new_page()
    page.set_default_timeout(20_000)
    if username:
        login(page, live_server, username)
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#s-home:not([hidden])")
    return page


def _until(page: Any, script: str, timeout: float = 60) -> None:
    """Poll `script` (a JS expression) until true. Not wait_for_function: its string predicates
    are eval'd, which the portal's CSP (no unsafe-eval) rightly refuses."""
    for _ in range(int(timeout * 10)):
        if page.evaluate(script):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout} s: {script}")


def _ready_offline(page: Any) -> None:
    """The service worker controls the page and the area's villages are on the phone."""
    _until(page, "navigator.serviceWorker.controller !== null")
    page.wait_for_selector("body[data-area=ready]", timeout=60_000)


def _register(page: Any, *, nik: str, name: str, born: str = "1990-05-17", sex: str = "M") -> None:
    page.goto(page.url.split("#")[0] + "#register")
    page.wait_for_selector("#s-register:not([hidden])")
    page.fill("#r-nik", nik)
    page.fill("#r-name", name)
    page.fill("#r-birth", born)
    page.check(f"#r-sex-{sex.lower()}")
    page.fill("#r-phone", "081234567890")
    page.select_option("#r-regency", VILLAGE[:5])
    page.wait_for_selector(f"#r-district option[value='{VILLAGE[:8]}']", state="attached")
    page.select_option("#r-district", VILLAGE[:8])
    page.wait_for_selector(f"#r-village option[value='{VILLAGE}']", state="attached")
    page.select_option("#r-village", VILLAGE)
    page.fill("#r-address", "Jl. Melati No. 5")
    page.select_option("#r-occupation", "petani")
    page.select_option("#r-income", "1000000")
    page.check("#r-consent")
    page.click("#r-save")


def _cash(page: Any, choice: str, months: int) -> str:
    page.goto(page.url.split("#")[0] + f"#cash/{choice}")
    page.wait_for_selector("#s-cash:not([hidden])")
    page.select_option("#c-who", choice)
    page.select_option("#c-months", str(months))
    page.click("#c-save")
    page.wait_for_selector("#s-receipt:not([hidden])")
    reference: str = page.get_attribute("#receipt", "data-reference")
    return reference


def _queue_count(page: Any) -> str:
    page.goto(page.url.split("#")[0] + "#home")
    page.wait_for_selector("#s-home:not([hidden])")
    text: str = page.inner_text("#queue-count")
    return text


def test_offline_registration_and_cash_sync_exactly_once(
    field: Any, live_server: Any, agent: Any, other_agent: Any
) -> None:
    known = register_participant(
        **registration_data(nik=nik_for(serial=90), registered_by=agent.staff)
    )
    before = set(Participant.objects.values_list("pk", flat=True))
    page = _open_app(field, live_server, agent.username)
    _ready_offline(page)

    field.set_offline(True)
    page.reload()
    page.wait_for_selector("#s-home:not([hidden])")
    assert "off" in page.get_attribute("#net", "class")

    # A wrong NIK is refused in the browser with the server's own message.
    _register(page, nik=nik_for(serial=1)[:12] + "0000", name="Salah Nik")
    page.screenshot(path="var/e2e-field-register.png", full_page=True)
    with translation.override("id"):
        expected = str(NIK_MESSAGES["nik_serial"])
    assert page.inner_text('#f-register .err[data-for="nik"]') == expected
    # Fixed, it is saved; the next screen takes cash for this new worker.
    page.fill("#r-nik", nik_for(serial=11))
    page.click("#r-save")
    page.wait_for_selector("#s-cash:not([hidden])")
    first_new = page.eval_on_selector("#c-who", "s => s.value")
    assert first_new.startswith("q:")
    _cash(page, first_new, 1)
    siti = nik_for(birth_date=date(1985, 3, 2), sex="F", serial=12)
    _register(page, nik=siti, name="Siti Aminah", born="1985-03-02", sex="F")
    page.wait_for_selector("#s-cash:not([hidden])")
    _register(page, nik=nik_for(serial=13), name="Joko Widodo")
    page.wait_for_selector("#s-cash:not([hidden])")
    receipt = _cash(page, f"p:{known.kpj_number}", 2)
    page.screenshot(path="var/e2e-field-receipt.png")
    # A NIK that someone else registers meanwhile: a conflict the server explains.
    dewi = nik_for(birth_date=date(1992, 1, 20), sex="F", serial=14)
    _register(page, nik=dewi, name="Dewi Lestari", born="1992-01-20", sex="F")
    page.wait_for_selector("#s-cash:not([hidden])")
    register_participant(
        **registration_data(
            nik=dewi,
            full_name="Dewi Lestari",
            birth_date=date(1992, 1, 20),
            sex="F",
            registered_by=other_agent.staff,
        )
    )

    page.reload()  # still offline: the queue is on the phone
    assert _queue_count(page) == "6"
    assert Payment.objects.count() == 0

    field.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    _until(page, "document.querySelector('#queue-count').textContent === '1'")

    new = Participant.objects.exclude(pk__in=before)
    mine = new.filter(registered_by=agent.staff)
    assert mine.count() == 3
    # the new worker who paid no cash is not active yet: this month is due (grace)
    joko = mine.get(full_name="Joko Widodo")
    assert Coverage.objects.get(pk=joko.pk).status != "active"
    assert sorted(p.full_name for p in mine) == ["Joko Widodo", "Salah Nik", "Siti Aminah"]
    payments = Payment.objects.filter(channel="agent")
    assert payments.count() == 2
    assert {p.reference for p in payments} >= {receipt}
    assert Coverage.objects.get(pk=known.pk).paid_through is not None
    for p in payments:
        cov = Coverage.objects.get(pk=p.participant_id)
        assert cov.status == "active"  # both paid through this month at least
        assert cov.paid_through is not None and cov.paid_through >= timezone.localdate().replace(
            day=1
        )
        assert p.paid_at <= timezone.now()
    # The refused registration says why, in the server's words.
    page.goto(page.url.split("#")[0] + "#queue")
    refused = page.locator('#queue li[data-status="refused"]')
    refused.wait_for()
    page.screenshot(path="var/e2e-field-queue.png", full_page=True)
    assert refused.count() == 1
    assert "Dewi Lestari" in refused.inner_text()
    # The server's duplicate_nik for a NIK outside the agent's scope (no KPJ, no branch).
    with translation.override("id"):
        duplicate = as_seen_by(agent.staff.api_clients.get(), duplicate_nik_error(dewi))
    assert refused.locator(".msg").inner_text().strip() == str(duplicate[0].message)

    # Sending again changes nothing: every item is answered once.
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(500)
    assert Participant.objects.exclude(pk__in=before).count() == 4
    assert Payment.objects.filter(channel="agent").count() == 2


def test_a_tab_closed_during_sync_creates_no_duplicate(
    field: Any, live_server: Any, agent: Any
) -> None:
    page = _open_app(field, live_server, agent.username)
    _ready_offline(page)
    field.set_offline(True)
    page.reload()
    page.wait_for_selector("#s-home:not([hidden])")
    rina = nik_for(birth_date=date(1988, 8, 8), sex="F", serial=21)
    _register(page, nik=rina, name="Rina Marlina", born="1988-08-08", sex="F")
    page.wait_for_selector("#s-cash:not([hidden])")

    # The server takes the registration, but the tab dies before the answer reaches it: the
    # item is left "sending" on the phone.
    reached: list[int] = []

    def lose_answer(route: Any) -> None:
        reached.append(route.fetch().status)  # the server commits; the tab never hears back

    field.route("**/api/v1/participants/bulk/", lose_answer)
    field.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    for _ in range(100):
        if reached:
            break
        page.wait_for_timeout(100)
    assert reached == [200]
    statuses = page.evaluate(
        """() => new Promise((ok) => { const r = indexedDB.open('bpu-field');
        r.onsuccess = () => { const q = r.result.transaction('queue').objectStore('queue')
        .getAll(); q.onsuccess = () => ok(q.result.map(i => i.status)); }; })"""
    )
    assert statuses == ["sending"]
    page.close()
    field.unroute("**/api/v1/participants/bulk/")
    assert Participant.objects.filter(full_name="Rina Marlina").count() == 1

    again = _open_app(field, live_server)
    _until(again, "document.querySelector('#queue-count').textContent === '0'")
    assert Participant.objects.filter(full_name="Rina Marlina").count() == 1
    # The resend was answered from the stored outcome of its Idempotency-Key.
    assert IdempotencyRecord.objects.filter(client__field_device__agent=agent.staff).count() == 1


def test_logging_out_with_unsent_work_warns_and_keeps_it(
    field: Any, live_server: Any, agent: Any
) -> None:
    page = _open_app(field, live_server, agent.username)
    _ready_offline(page)
    field.set_offline(True)
    page.reload()
    page.wait_for_selector("#s-home:not([hidden])")
    tono = nik_for(serial=31)
    _register(page, nik=tono, name="Tono Sugiarto")
    page.wait_for_selector("#s-cash:not([hidden])")
    page.goto(page.url.split("#")[0] + "#home")
    page.wait_for_selector("#s-home:not([hidden])")

    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("#logout")
    page.wait_for_timeout(300)
    assert asked and "1" in asked[0]  # "1 items have not been sent..."
    assert page.is_visible("#s-home")  # dismissed: still logged in

    page.once("dialog", lambda d: d.accept())
    page.click("#logout")
    page.wait_for_selector("#s-login:not([hidden])")
    # The item stays on the phone, sealed; the key is gone with the login.
    stored = page.evaluate(
        """() => new Promise((ok) => { const r = indexedDB.open('bpu-field');
        r.onsuccess = () => { const t = r.result.transaction(['queue', 'meta']);
        const q = t.objectStore('queue').getAll(); const k = t.objectStore('meta').getAllKeys();
        t.oncomplete = () => ok({queue: q.result.map(i => ({status: i.status,
        clear: JSON.stringify(i).includes('Tono')})), keys: k.result}); }; })"""
    )
    assert stored["queue"] == [{"status": "waiting", "clear": False}]
    assert not any(str(k).startswith(("key:", "token:")) for k in stored["keys"])
    assert "1" in page.inner_text("#login-other")

    # Back online, the same agent logs in again: the item is read and sent, once.
    field.set_offline(False)
    again = _open_app(field, live_server, agent.username)
    _until(again, "document.querySelector('#queue-count').textContent === '0'")
    assert Participant.objects.filter(full_name="Tono Sugiarto").count() == 1


def test_the_language_switches_offline(field: Any, live_server: Any, agent: Any) -> None:
    page = _open_app(field, live_server, agent.username)
    _ready_offline(page)
    field.set_offline(True)
    page.reload()
    page.wait_for_selector("#s-home:not([hidden])")
    assert page.inner_text("#go-register") == "Daftarkan pekerja"
    page.click("#lang")
    page.wait_for_selector("#s-home:not([hidden])")
    _until(page, "document.documentElement.lang === 'en'")
    assert page.inner_text("#go-register") == "Register a worker"
    # the refusal messages follow: the rules' English text
    _register(page, nik="12345", name="Wrong Nik")
    with translation.override("en"):
        expected = str(NIK_MESSAGES["nik_format"])
    assert page.inner_text('#f-register .err[data-for="nik"]') == expected
