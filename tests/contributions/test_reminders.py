"""Payment reminders in-process: rules and planning, quiet hours across WIB/WITA/WIT, delivery
against the fake gateway (faults, fallback, rate limit), rendering, callbacks, opt-out, pages.
The real-worker cases are in test_reminders_worker.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import time as clock
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from contributions.coverage import due_date
from contributions.messaging import reminders
from contributions.models import Coverage, Reminder, ReminderPreference, ReminderRule
from contributions.rates import add_months, quote_contribution
from tests.conftest import login_as

pytestmark = pytest.mark.django_db

THIS_MONTH = timezone.localdate().replace(day=1)
NEXT = add_months(THIS_MONTH, 1)  # a month every new participant owes


def day(n: int) -> date:
    """Day `n` of NEXT as if its due date were the 15th: the due date (coverage.due_date) moved
    by n - 15 days, so day(12) is three days before it whatever the calendar says."""
    return due_date(NEXT) + timedelta(days=n - 15)


def utc(d: date, hour: int, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


def plan(d: date) -> dict[str, int]:
    return reminders.plan_reminders(day=d).created


def kinds_of(participant: Any) -> set[str]:
    return set(Reminder.objects.filter(participant=participant).values_list("kind", flat=True))


def dispatch(now: datetime) -> list[int]:
    out: list[int] = []
    reminders.dispatch_due_reminders(enqueue=out.extend, now=now)
    return out


@pytest.fixture(autouse=True)
def _rules(refdata: Any, settings: Any) -> None:
    reminders.seed_reminder_rules()
    settings.REMINDER_CALLBACK_SECRET = "test-callback-secret"


# --- rules and planning ------------------------------------------------------------------------
def test_each_rule_finds_its_participants_and_no_one_else(reminded: Any, pay: Any) -> None:
    owes = reminded()  # registered this month, never paid
    paid = reminded()
    Coverage.objects.filter(pk=paid.pk).update(paid_through=NEXT, status="active")
    no_consent = reminded(consent_reminders=False)
    opted = reminded()
    reminders.opt_out(participant=opted, reason="test")
    # first unpaid month = NEXT - 3: lapses after NEXT's due date
    lapsing = reminded(start_month=add_months(NEXT, -3))

    assert plan(day(12))["due_soon"] == 2  # 15 - 3
    assert plan(day(10))["about_to_lapse"] == 1  # 15 - 5
    assert plan(day(15))["due_today"] == 2
    assert plan(day(20))["overdue"] == 1  # 15 + 5: `lapsing` lapsed on the 16th
    assert plan(day(22))["lapsed_winback"] == 1  # 15 + 7
    assert kinds_of(owes) == {"due_soon", "due_today", "overdue"}
    assert kinds_of(lapsing) == {"due_soon", "about_to_lapse", "due_today", "lapsed_winback"}
    for nobody in (paid, no_consent, opted):
        assert kinds_of(nobody) == set()
    # a day that is no rule's day plans nothing
    assert sum(plan(day(3)).values()) == 0


def test_reminders_count_from_the_due_date_a_holiday_moved(reminded: Any) -> None:
    """August 2026: the 15th and 16th are a weekend and the 17th Proklamasi, so the month is
    due on Tuesday the 18th (SKB 3 Menteri 2026; contributions/due_dates.py): "due in 3 days"
    goes on the 15th, "due today" on the 18th, "overdue" five days after it, and someone whose
    fourth unpaid month it is gets "about to lapse" five days before the 18th and is lapsed
    (win-back) from the 19th, not the 16th."""
    aug = date(2026, 8, 1)
    owes = reminded(start_month=aug)
    lapsing = reminded(start_month=add_months(aug, -3))
    assert plan(date(2026, 8, 12))["due_soon"] == 0  # 15 - 3: not a due date this month
    assert plan(date(2026, 8, 15))["due_soon"] == 2  # 18 - 3
    assert plan(date(2026, 8, 13))["about_to_lapse"] == 1
    assert plan(date(2026, 8, 18))["due_today"] == 2
    assert sum(plan(date(2026, 8, 20)).values()) == 0  # 15 + 5: nothing
    assert plan(date(2026, 8, 23))["overdue"] == 1  # 18 + 5: `lapsing` lapsed on the 19th
    assert plan(date(2026, 8, 25))["lapsed_winback"] == 1  # 18 + 7
    assert kinds_of(owes) == {"due_soon", "due_today", "overdue"}
    assert kinds_of(lapsing) == {"due_soon", "about_to_lapse", "due_today", "lapsed_winback"}
    assert {r.period for r in Reminder.objects.all()} == {aug}


def test_planning_twice_adds_nothing(reminded: Any) -> None:
    for _ in range(5):
        reminded()
    first = plan(day(12))
    again = plan(day(12))
    assert first["due_soon"] == 5
    assert sum(again.values()) == 0
    assert Reminder.objects.count() == 5


def test_rules_are_data_an_admin_can_change(reminded: Any) -> None:
    reminded()
    ReminderRule.objects.filter(kind="due_soon").update(offset_days=-7)
    assert plan(day(12))["due_soon"] == 0
    assert plan(day(8))["due_soon"] == 1
    ReminderRule.objects.filter(kind="due_today").update(enabled=False)
    assert "due_today" not in plan(day(15))


def test_payment_thanks_the_day_after_a_payment(reminded: Any, pay: Any) -> None:
    p = reminded()
    pay(p, months=1)
    today = timezone.localdate()
    assert plan(today + timedelta(days=1))["payment_thanks"] == 1
    r = Reminder.objects.get(participant=p, kind="payment_thanks")
    assert r.period == THIS_MONTH
    assert "terima kasih" in reminders.render_reminder(r).text.lower()


def test_preferred_channel_and_rule_channel(reminded: Any) -> None:
    wa = reminded()
    ReminderPreference.objects.create(participant=wa, preferred_channel="whatsapp")
    sms = reminded()
    plan(day(12))
    assert Reminder.objects.get(participant=wa).channel == "whatsapp"
    assert Reminder.objects.get(participant=sms).channel == "sms"
    ReminderRule.objects.filter(kind="due_today").update(channel="email")
    plan(day(15))
    assert Reminder.objects.get(participant=wa, kind="due_today").channel == "email"


# --- quiet hours across the three time zones --------------------------------------------------
def test_send_after_is_eight_local_in_each_time_zone(reminded: Any) -> None:
    people = {zone: reminded(zone) for zone in ("WIB", "WITA", "WIT")}
    plan(day(12))
    send_after = {
        zone: Reminder.objects.get(participant=p).send_after.astimezone(UTC)
        for zone, p in people.items()
    }
    assert send_after["WIB"] == utc(day(12), 1)  # 08:00 UTC+7
    assert send_after["WITA"] == utc(day(12), 0)  # 08:00 UTC+8
    assert send_after["WIT"] == utc(day(11), 23)  # 08:00 UTC+9


def test_quiet_hours_hold_until_the_local_window_opens(reminded: Any, gateway: Any) -> None:
    people = {zone: reminded(zone) for zone in ("WIB", "WITA", "WIT")}
    plan(day(12))
    by_zone = {zone: Reminder.objects.get(participant=p) for zone, p in people.items()}

    # 23:30 UTC: 06:30 WIB, 07:30 WITA, 08:30 WIT -> only Papua
    assert dispatch(utc(day(11), 23, 30)) == [by_zone["WIT"].pk]
    result = reminders.deliver_batch([by_zone["WIT"].pk], now=utc(day(11), 23, 30))
    assert result.sent == 1
    # 00:30 UTC: 07:30 WIB, 08:30 WITA -> Bali too
    assert dispatch(utc(day(12), 0, 30)) == [by_zone["WITA"].pk]
    assert dispatch(utc(day(12), 0, 45)) == []  # nothing is dispatched twice

    # a dispatched batch that reaches a worker after 20:00 local waits for tomorrow 08:00:
    # 12:30 UTC = 19:30 WIB, 20:30 WITA
    result = reminders.deliver_batch(
        [by_zone["WIB"].pk, by_zone["WITA"].pk], now=utc(day(12), 12, 30)
    )
    assert (result.sent, result.deferred) == (1, 1)
    wita = Reminder.objects.get(pk=by_zone["WITA"].pk)
    assert wita.state == "queued" and wita.quiet_deferrals == 1
    assert wita.send_after.astimezone(UTC) == utc(day(13), 0)  # 08:00 WITA next day
    assert dispatch(utc(day(12), 23, 59)) == []
    assert dispatch(utc(day(13), 0, 0)) == [wita.pk]
    figures = reminders.day_figures(day(12))["sms"]
    assert figures["planned"] == 3 and figures["sent"] == 2 and figures["held_quiet_hours"] == 1
    assert len(gateway.state.messages) == 2


def test_a_reminder_that_cannot_be_sent_in_time_is_skipped(reminded: Any, gateway: Any) -> None:
    p = reminded("WIT")
    plan(day(12))
    r = Reminder.objects.get(participant=p)
    # three days later, at 22:00 WIT: the next window is past the allowed delay
    result = reminders.deliver_batch([r.pk], now=utc(day(15), 13))
    assert result.skipped_quiet_hours == 1
    assert Reminder.objects.get(pk=r.pk).state == "skipped_quiet_hours"
    assert gateway.state.messages == []


# --- delivery ------------------------------------------------------------------------------------
SECRET = "test-callback-secret"
NOON_WIB = 5  # 12:00 WIB, 13:00 WITA, 14:00 WIT in UTC hours


def planned(reminded: Any, n: int = 1, **kw: Any) -> list[Reminder]:
    people = [reminded(**kw) for _ in range(n)]
    plan(day(12))
    return list(Reminder.objects.filter(participant__in=people).order_by("id"))


def test_sent_reminder_reaches_the_gateway_once(reminded: Any, gateway: Any) -> None:
    [r] = planned(reminded)
    now = utc(day(12), NOON_WIB)
    assert reminders.deliver_batch([r.pk], now=now).sent == 1
    again = reminders.deliver_batch([r.pk], now=now)  # a retried / duplicated task
    assert again.sent == 0 and again.not_queued == 1
    r.refresh_from_db()
    assert r.state == "sent" and r.attempts == 1 and r.gateway_message_id
    [msg] = gateway.state.messages
    assert msg["reference"] == f"bpu-rem-{r.pk}" and msg["to"] == r.participant.phone
    assert r.participant.kpj_number in msg["text"]


def test_a_gateway_message_id_is_claimed_and_never_held_twice(reminded: Any, gateway: Any) -> None:
    """The gateway's ids are unique across participants: claimed in enrollment_uniquekey with
    the send (on a cluster the column's own constraint is dropped), so a repeated id fails the
    batch as the constraint does on one server, and nothing of it is written."""
    from django.db import IntegrityError, transaction

    from enrollment import unique_keys

    first, second = planned(reminded, n=2)
    assert reminders.deliver_batch([first.pk], now=utc(day(12), NOON_WIB)).sent == 1
    first.refresh_from_db()
    key = (reminders.GATEWAY_MESSAGE, first.gateway_message_id)
    assert unique_keys.holders([key]) == {key: first.participant_id}
    second.gateway_message_id = first.gateway_message_id  # a gateway repeating an id
    second.state = "sent"
    with pytest.raises(IntegrityError), transaction.atomic():
        reminders._save_states([second])
    second.refresh_from_db()
    assert second.state == "queued" and second.gateway_message_id is None


def test_a_participant_who_paid_meanwhile_gets_nothing(
    reminded: Any, pay: Any, gateway: Any
) -> None:
    [r] = planned(reminded)
    pay(r.participant, months=2)  # this month and next: the planned month is paid
    result = reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB))
    assert result.skipped_paid == 1
    assert Reminder.objects.get(pk=r.pk).state == "skipped_paid"
    assert gateway.state.messages == []


@pytest.mark.parametrize(("mode", "times"), [("error500", 1), ("error429", 1), ("drop", 2)])
def test_transient_gateway_errors_are_retried(
    reminded: Any, gateway: Any, mode: str, times: int
) -> None:
    """(A dropped keep-alive connection is retried once at once: `drop` must happen twice.)"""
    [r] = planned(reminded)
    gateway.state.mode, gateway.state.fail_next = mode, times
    now = utc(day(12), NOON_WIB)
    first = reminders.deliver_batch([r.pk], now=now)
    assert first.retry == [r.pk] and first.sent == 0
    r.refresh_from_db()
    assert r.state == "queued" and r.attempts == 1 and r.last_error
    assert reminders.deliver_batch(first.retry, now=now).sent == 1
    assert len(gateway.state.messages) == 1


@pytest.mark.parametrize("per_request", [1, 2])
def test_gateway_down_or_slow_stops_the_batch_and_keeps_everything(
    reminded: Any, gateway: Any, settings: Any, per_request: int
) -> None:
    settings.REMINDER_GATEWAY_BATCH = per_request  # 1: POST /messages; 2: /messages/batch
    rows = planned(reminded, n=3)
    ids = [r.pk for r in rows]
    now = utc(day(12), NOON_WIB)
    settings.REMINDER_GATEWAY_URL = "http://127.0.0.1:9"  # connection refused
    result = reminders.deliver_batch(ids, now=now)
    assert result.retry == ids and result.sent == 0
    # only the first request was tried: the batch stops calling a gateway that is down
    attempts = [r.attempts for r in Reminder.objects.filter(pk__in=ids).order_by("id")]
    assert attempts == [1] * per_request + [0] * (3 - per_request)

    settings.REMINDER_GATEWAY_URL = gateway.url
    settings.REMINDER_GATEWAY_TIMEOUT = 0.2
    gateway.state.delay = 0.5
    started = clock.monotonic()
    assert reminders.deliver_batch(ids, now=now).retry == ids
    assert clock.monotonic() - started < 2  # one timeout, not one per message
    gateway.state.delay = 0
    assert reminders.deliver_batch(ids, now=now).sent == 3
    # the timed-out request was accepted late by the gateway: the resend is not a second SMS
    assert len(gateway.state.messages) == 3


def test_batch_requests_carry_many_messages_and_fall_back_one_by_one(
    reminded: Any, gateway: Any, settings: Any
) -> None:
    settings.REMINDER_GATEWAY_BATCH = 10
    rows = planned(reminded, n=5)
    ids = [r.pk for r in rows]
    now = utc(day(12), NOON_WIB)
    gateway.state.mode, gateway.state.fail_next = "reject400", 1  # the first SMS is refused
    result = reminders.deliver_batch(ids, now=now)
    assert result.sent == 5 and result.failed == 0 and result.retry == []
    # one request for the five SMS, one for the refused one's WhatsApp fallback
    assert gateway.state.stats() == {"accepted": 5, "duplicates": 0, "requests": 2, "failures": 1}
    got = list(Reminder.objects.filter(pk__in=ids).order_by("id"))
    assert [r.channel for r in got] == ["whatsapp", "sms", "sms", "sms", "sms"]
    assert "sms" in got[0].last_error and {r.attempts for r in got} == {1}
    assert {r.gateway_message_id for r in got} == {m["id"] for m in gateway.state.messages}

    # a failed request (500) keeps every message in it queued; the resend sends each once
    more = [r.pk for r in planned(reminded, n=3)]
    gateway.state.mode, gateway.state.fail_next = "error500", 1
    first = reminders.deliver_batch(more, now=now)
    assert first.retry == more and first.sent == 0
    assert set(Reminder.objects.filter(pk__in=more).values_list("state", flat=True)) == {"queued"}
    assert reminders.deliver_batch(more, now=now).sent == 3
    assert gateway.state.stats()["accepted"] == 8 and gateway.state.stats()["duplicates"] == 0


def test_a_wrong_gateway_key_fails_nothing(reminded: Any, gateway: Any, settings: Any) -> None:
    rows = planned(reminded, n=2)
    settings.REMINDER_GATEWAY_KEY = "wrong"
    result = reminders.deliver_batch([r.pk for r in rows], now=utc(day(12), NOON_WIB))
    assert result.failed == 0 and result.retry == [r.pk for r in rows]
    assert set(Reminder.objects.values_list("state", flat=True)) == {"queued"}


def test_permanent_refusal_falls_back_to_the_next_channel(reminded: Any, gateway: Any) -> None:
    p = reminded(email="budi@example.com")
    ReminderPreference.objects.create(participant=p, preferred_channel="whatsapp")
    plan(day(12))
    r = Reminder.objects.get(participant=p)
    gateway.state.mode, gateway.state.fail_next = "reject400", 1  # not on WhatsApp
    assert reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB)).sent == 1
    r.refresh_from_db()
    assert r.channel == "sms" and r.state == "sent" and "whatsapp" in r.last_error
    # every gateway channel refuses: email is the last resort
    q = reminded(email="sari@example.com")
    plan(day(12))
    r2 = Reminder.objects.get(participant=q)
    gateway.state.mode, gateway.state.fail_next = "reject400", None
    assert reminders.deliver_batch([r2.pk], now=utc(day(12), NOON_WIB)).sent == 1
    assert Reminder.objects.get(pk=r2.pk).channel == "email"
    assert mail.outbox[-1].to == ["sari@example.com"]


def test_permanent_refusal_everywhere_fails_without_retry(reminded: Any, gateway: Any) -> None:
    [r] = planned(reminded)
    gateway.state.mode = "reject400"
    result = reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB))
    assert result.failed == 1 and result.retry == []
    assert Reminder.objects.get(pk=r.pk).state == "failed"


def test_rate_limit_is_respected(reminded: Any, gateway: Any, settings: Any) -> None:
    rows = planned(reminded, n=30)
    settings.REMINDER_RATE_LIMITS = {"sms": 20.0}
    started = clock.monotonic()
    assert reminders.deliver_batch([r.pk for r in rows], now=utc(day(12), NOON_WIB)).sent == 30
    assert clock.monotonic() - started >= 0.45  # 20 at once (burst), 10 more at 20/s


# --- rendering -----------------------------------------------------------------------------------
@pytest.mark.two_clocks
def test_message_in_indonesian_by_default_and_english_on_request(reminded: Any) -> None:
    indo = reminded()
    eng = reminded(language="en")
    plan(day(12))
    text_id = reminders.render_reminder(Reminder.objects.get(participant=indo), today=day(12))
    text_en = reminders.render_reminder(Reminder.objects.get(participant=eng), today=day(12))
    month_name_id = {1: "Januari", 2: "Februari", 3: "Maret", 4: "April", 5: "Mei", 6: "Juni"}
    month_name_id.update(
        {7: "Juli", 8: "Agustus", 9: "September", 10: "Oktober", 11: "November", 12: "Desember"}
    )
    # two months owed (this and next): Rp 16,800 a month, less a PP 50/2025 discount in the
    # months it covers (the rate book's discount windows, so the sum depends on the months)
    owed = quote_contribution(
        declared_income=indo.declared_income,
        programmes=indo.programmes,
        months=2,
        first_month=THIS_MONTH,
        sector=indo.occupation.sector,
    ).total
    assert owed in (33_600, 25_200, 16_800)  # no month, one month or both months discounted
    assert indo.kpj_number in text_id.text and "jatuh tempo" in text_id.text
    due = due_date(NEXT)  # the 15th, or the next working day
    assert f"{due.day} {month_name_id[due.month]} {due.year}" in text_id.text
    assert f"Rp {owed:,}".replace(",", ".") in text_id.text
    assert "is due on" in text_en.text and eng.kpj_number in text_en.text
    assert f"Rp {owed:,}" in text_en.text
    assert "Perisai" in text_id.text and "Perisai" in text_en.text


# --- callbacks -----------------------------------------------------------------------------------
def post_callback(
    client: Any, payload: Any, secret: str = SECRET, timestamp: int | None = None
) -> Any:
    """The callback as the gateway sends it: signed (timestamp and body) now, or at `timestamp`."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        reverse("contributions:gateway_callback"),
        data=body,
        content_type="application/json",
        headers=reminders.callback_headers(body, secret=secret, timestamp=timestamp),
    )


def test_delivery_callback_marks_delivered_idempotently(
    client: Any, reminded: Any, gateway: Any
) -> None:
    [r] = planned(reminded)
    reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB))
    r.refresh_from_db()
    payload = {"type": "status", "message_id": r.gateway_message_id, "status": "delivered"}
    assert post_callback(client, payload).status_code == 200
    assert post_callback(client, payload).status_code == 200
    assert Reminder.objects.get(pk=r.pk).state == "delivered"
    failed = {**payload, "status": "failed"}  # never overrides delivered
    assert post_callback(client, failed).json()["state"] == "delivered"


def test_failed_callback(client: Any, reminded: Any, gateway: Any) -> None:
    [r] = planned(reminded)
    reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB))
    r.refresh_from_db()
    payload = {"type": "status", "message_id": r.gateway_message_id, "status": "failed"}
    assert post_callback(client, {**payload, "error": "absent subscriber"}).status_code == 200
    r.refresh_from_db()
    assert r.state == "failed" and r.last_error == "absent subscriber"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (json.dumps({"type": "status"}).encode(), 400),
        (json.dumps({"type": "status", "message_id": "x", "status": "eaten"}).encode(), 400),
        (json.dumps({"type": "inbound", "from": 62812}).encode(), 400),
        (json.dumps({"type": "nonsense"}).encode(), 400),
        (json.dumps({"type": "status", "message_id": "nope", "status": "delivered"}).encode(), 404),
        (b"\xff\xfe", 400),
    ],
)
def test_bad_callbacks_get_a_clear_4xx(client: Any, body: bytes, status: int) -> None:
    response = post_callback(client, body)
    assert response.status_code == status
    assert "error" in response.json()


def test_callback_signature_is_required(client: Any) -> None:
    body = json.dumps({"type": "inbound", "from": "+628123", "text": "STOP"}).encode()
    url = reverse("contributions:gateway_callback")
    assert client.post(url, data=body, content_type="application/json").status_code == 401
    assert post_callback(client, body, secret="wrong").status_code == 401
    assert client.get(url).status_code == 405


def sent_to(reminded: Any) -> Any:
    """A participant who was sent a reminder (so a STOP from their number opts them out)."""
    p = reminded()
    plan(day(12))
    reminders.deliver_batch([Reminder.objects.get(participant=p).pk], now=utc(day(12), NOON_WIB))
    return p


def test_a_stop_replayed_outside_the_window_is_refused(
    client: Any, reminded: Any, gateway: Any, settings: Any
) -> None:
    settings.REMINDER_CALLBACK_MAX_AGE = 300
    p = sent_to(reminded)
    stop = {"type": "inbound", "from": p.phone, "text": "STOP"}
    now = int(clock.time())
    for signed_at in (now - 301, now + 301, 0):  # captured earlier; a clock far ahead; epoch
        response = post_callback(client, stop, timestamp=signed_at)
        assert (response.status_code, response.json()) == (401, {"error": "expired"})
    assert not ReminderPreference.objects.filter(pk=p.pk, opted_out_at__isnull=False).exists()
    assert post_callback(client, stop, timestamp=now - 290).json()["opted_out"] == 1  # in time


def _body_only_hmac(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """The scheme before timestamps: HMAC of the body alone."""
    return {**headers, "X-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body, h: {"X-Signature": h["X-Signature"]}, id="no-timestamp"),
        pytest.param(
            lambda body, h: {**h, "X-Timestamp": str(int(h["X-Timestamp"]) + 60)},
            id="timestamp-changed-after-signing",
        ),
        pytest.param(_body_only_hmac, id="old-scheme-body-only"),
        pytest.param(lambda body, h: {**h, "X-Timestamp": "１２３"}, id="full-width-digits"),
        pytest.param(lambda body, h: {**h, "X-Timestamp": "-5"}, id="negative"),
        pytest.param(lambda body, h: {**h, "X-Signature": "é" * 64}, id="non-ascii-signature"),
    ],
)
def test_a_callback_not_signed_with_its_timestamp_is_refused(
    client: Any, reminded: Any, gateway: Any, forge: Any
) -> None:
    p = sent_to(reminded)
    body = json.dumps({"type": "inbound", "from": p.phone, "text": "STOP"}).encode()
    headers = forge(body, reminders.callback_headers(body, secret=SECRET))
    response = client.post(
        reverse("contributions:gateway_callback"),
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert (response.status_code, response.json()) == (401, {"error": "bad_signature"})
    assert not ReminderPreference.objects.filter(pk=p.pk, opted_out_at__isnull=False).exists()


def test_the_fake_gateway_signs_its_callbacks_as_the_portal_checks_them(
    live_server: Any, reminded: Any, gateway: Any
) -> None:
    """The fake gateway's POST /_control/callback reaches the portal over HTTP, signed: a STOP
    opts out; the same STOP signed ten minutes ago is refused as a replay."""
    import urllib.request

    p = sent_to(reminded)
    gateway.callback_url = live_server.url + reverse("contributions:gateway_callback")

    def via_gateway(**extra: Any) -> Any:
        payload = {"type": "inbound", "from": "0" + p.phone[3:], "text": "BERHENTI"}
        request = urllib.request.Request(  # noqa: S310 - the local fake gateway
            gateway.url + "/_control/callback",
            data=json.dumps({"payload": payload, **extra}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)

    replay = via_gateway(timestamp=int(clock.time()) - 600)
    assert replay == {"status": 401, "body": {"error": "expired"}}
    assert via_gateway() == {"status": 200, "body": {"ok": True, "opted_out": 1}}
    assert ReminderPreference.objects.get(pk=p.pk).opted_out_at is not None


@pytest.mark.parametrize("word", ["STOP", "berhenti", " Stop please"])
def test_inbound_stop_opts_the_participant_out(
    client: Any, reminded: Any, gateway: Any, word: str
) -> None:
    p = reminded()
    plan(day(12))
    r = Reminder.objects.get(participant=p)
    reminders.deliver_batch([r.pk], now=utc(day(12), NOON_WIB))
    plan(day(15))  # the next reminder is queued
    sender = "0" + p.phone[3:]  # the gateway may write 08...
    response = post_callback(client, {"type": "inbound", "from": sender, "text": word})
    assert response.status_code == 200 and response.json()["opted_out"] == 1
    assert ReminderPreference.objects.get(pk=p.pk).opted_out_at is not None
    assert Reminder.objects.get(participant=p, kind="due_today").state == "opted_out"
    assert plan(day(20)).get("overdue") == 0  # no new plans either


def test_inbound_other_text_is_ignored_and_unknown_sender_is_404(client: Any) -> None:
    hello = {"type": "inbound", "from": "+628199999999", "text": "halo"}
    assert post_callback(client, hello).json()["opted_out"] == 0
    stop = {"type": "inbound", "from": "+628199999999", "text": "STOP"}
    assert post_callback(client, stop).status_code == 404


# --- pages ---------------------------------------------------------------------------------------
def test_participant_page_shows_reminders_and_agent_can_opt_out(
    client: Any, agent: Any, reminded: Any
) -> None:
    p = reminded(registered_by=agent.staff)
    plan(day(12))
    client.force_login(agent)
    page = client.get(reverse("enrollment:participant", args=[p.pk]))
    assert page.status_code == 200
    assert b'data-testid="reminders"' in page.content
    response = client.post(
        reverse("contributions:reminder_opt_out", args=[p.pk]), {"reason": "by phone"}
    )
    assert response.status_code == 302
    assert ReminderPreference.objects.get(pk=p.pk).reason == "by phone"
    assert Reminder.objects.get(participant=p).state == "opted_out"
    page = client.get(reverse("enrollment:participant", args=[p.pk]))
    assert b'data-testid="reminders-opted-out"' in page.content


def test_opt_out_outside_the_agents_scope_is_404(
    client: Any, other_agent: Any, reminded: Any
) -> None:
    p = reminded()
    client.force_login(other_agent)
    url = reverse("contributions:reminder_opt_out", args=[p.pk])
    assert client.post(url).status_code == 404


def test_admin_page_shows_figures_to_staff_only(
    client: Any, agent: Any, admin_user: Any, reminded: Any, gateway: Any
) -> None:
    rows = planned(reminded, n=2)
    reminders.deliver_batch([rows[0].pk], now=utc(day(12), NOON_WIB))
    url = reverse("contributions:reminders_today") + f"?day={day(12).isoformat()}"
    client.force_login(agent)
    assert client.get(url).status_code == 403
    login_as(client, admin_user)
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["figures"]["sms"]["planned"] == 2
    assert page.context["figures"]["sms"]["sent"] == 1
    assert client.get(reverse("contributions:reminders_today") + "?day=x").status_code == 400


def test_django_admin_lists_rules_and_reminders(client: Any, admin_user: Any) -> None:
    login_as(client, admin_user)
    for name in ("reminderrule", "reminder", "reminderpreference"):
        assert client.get(reverse(f"admin:contributions_{name}_changelist")).status_code == 200
