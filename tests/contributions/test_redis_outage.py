"""Redis down (issue #8, "Faults"): a dedicated redis-server started by the test is the cache and
the broker; it is stopped, the portal keeps registering and posting payments (pages and API),
says what is degraded, and queues its notifications in the outbox; Redis comes back, the relay
publishes them, a real worker sends each exactly once."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bpjsportal.celery import app
from bpjsportal.core import redis_status
from contributions.messaging import outbox
from contributions.models import OutboxMessage, Payment, Reminder
from enrollment.api.auth import ClientRateThrottle
from enrollment.api.clients import create_api_client
from enrollment.models import Participant, nik_q
from tests.conftest import nik_for, password_login, registration_data, start_worker
from tests.contributions.test_reminders_worker import stop, wait_for
from tests.servers import DedicatedRedis

BANNER = "Reminders and notifications are delayed"


def _point_celery_at(broker: str, backend: str | None = None) -> None:
    """Celery's broker and result store, and everything the app built for the old ones: the
    result backend is built once per app (a stale one keeps retrying the stopped server and then
    fails every later `.get()`: "Retry limit exceeded ... result store"), the connection and
    producer pools once per broker URL."""
    app.conf.broker_url = broker
    app.conf.result_backend = backend or broker
    old = app._backend
    app._backend_cache = None  # a thread-safe backend is kept for the app, another per thread
    vars(app._local).pop("backend", None)
    if old is not None:
        with contextlib.suppress(Exception):  # its server may be gone: nothing to say goodbye to
            old.result_consumer.stop()
        with contextlib.suppress(Exception):
            old.client.connection_pool.disconnect()
    app._pool = None
    app.amqp._producer_pool = None


def _forget_pools_of(server: DedicatedRedis) -> None:
    """kombu keeps a process-wide pool per broker: drop the stopped server's."""
    from kombu import pools

    for group in (pools.connections, pools.producers):
        for key, pool in list(group.items()):
            conn = pool.connection if group is pools.connections else pool.connections.connection
            if conn.port == server.port:
                with contextlib.suppress(Exception):
                    pool.force_close_all()
                dict.pop(group, key)  # keys are already hashed (EqualityDict hashes again)


@pytest.fixture
def own_redis(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[DedicatedRedis]:
    """Cache and broker on a redis-server of this test only (stopped and started at will)."""
    server = DedicatedRedis()
    server.start()
    before = (app.conf.broker_url, app.conf.result_backend)
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = server.url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": server.url,
            "KEY_PREFIX": f"outage-{uuid.uuid4().hex[:6]}",
        }
    }
    settings.REDIS_HEALTH_TTL = 0.5
    settings.API_THROTTLE_RATE = "1000/min"
    # the worker subprocess; Celery's own conf reads these before its settings too, so they are
    # undone here, before Celery is pointed back (not at the end of the test, by `monkeypatch`)
    env = pytest.MonkeyPatch()
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.setenv(name, server.url)
    _point_celery_at(server.url)
    redis_status.reset()
    monkeypatch.setattr(ClientRateThrottle, "_warned_at", 0.0)  # its log line is once a minute
    try:
        yield server
    finally:
        server.stop()
        env.undo()
        _point_celery_at(*before)
        _forget_pools_of(server)
        redis_status.reset()


def _queued(server: DedicatedRedis, queue: str) -> list[dict[str, Any]]:
    """The task messages waiting in the dedicated broker's queue (kombu keeps a Redis list)."""
    client = redis.Redis.from_url(server.url)
    try:
        return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    finally:
        client.close()


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "nik": nik_for(serial=71),
        "full_name": "Asep Sunandar",
        "birth_date": "1990-05-17",
        "sex": "M",
        "phone": "081234500071",
        "province": "32",
        "regency": "32.73",
        "district": "32.73.05",
        "village": "32.73.05.1001",
        "address": "Jl. Melati No. 5",
        "occupation": "petani",
        "declared_income": "1000000",
        "language": "id",
        "consent_data": "on",
        "consent_reminders": "on",
        "client_token": str(uuid.uuid4()),
    }
    data.update(overrides)
    return data


def _api_registration(serial: int) -> str:
    data = registration_data(nik=nik_for(serial=serial, sex="M"), consent_reminders=True)
    data.pop("channel")
    data["birth_date"] = data["birth_date"].isoformat()
    data["phone"] = f"0812345{serial:05d}"
    return json.dumps(data)


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_redis_down_registration_and_payment_work_then_outbox_drains_exactly_once(
    tx_refdata: Any,
    own_redis: DedicatedRedis,
    agent: Any,
    gateway: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert password_login(web, agent)
    api = create_api_client(name="outage admin", scope="admin").token
    bank = create_api_client(name="outage bank", scope="channel", payment_channel="bank").token
    assert BANNER not in web.get("/").content.decode()

    own_redis.stop()
    time.sleep(0.6)  # the remembered "Redis is up" (REDIS_HEALTH_TTL) expires
    # --- Redis down: every write path still works -------------------------------------------
    caplog.set_level(logging.WARNING)
    home = web.get("/")
    assert home.status_code == 200 and BANNER in home.content.decode()
    assert cache.get("anything", "fallback") == "fallback"  # a miss, not an exception

    registered = web.post("/register/", _form())
    assert registered.status_code == 302, registered.content.decode()[:2000]
    person = Participant.objects.get(nik_q(nik_for(serial=71)))
    cov_amount = int(
        web.get(
            "/api/v1/quotes/?income=1000000&months=1", HTTP_AUTHORIZATION=f"Token {api}"
        ).json()["total"]
    )
    cash_url = reverse("contributions:record_cash", args=[person.pk])
    paid = web.post(
        cash_url, {"months": "1", "amount": str(cov_amount), "client_token": str(uuid.uuid4())}
    )
    assert paid.status_code == 302, paid.content.decode()[:2000]

    by_api = web.post(
        "/api/v1/participants/",
        _api_registration(72),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {api}",
    )
    assert by_api.status_code == 201, by_api.content
    kpj = by_api.json()["kpj_number"]
    api_paid = web.post(
        "/api/v1/payments/",
        json.dumps(
            {
                "kpj_number": kpj,
                "amount": cov_amount,
                "months": 1,
                "reference": "TRX-OUTAGE-1",
                "paid_at": timezone.now().isoformat(),
                "payer": "participant",
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {bank}",
    )
    assert api_paid.status_code == 201, api_paid.content
    assert "API throttle failing open" in caplog.text

    kinds = sorted(Reminder.objects.values_list("kind", flat=True))
    assert kinds == ["payment_receipt", "payment_receipt", "welcome", "welcome"]
    assert Payment.objects.count() == 2 and Participant.objects.count() == 2
    assert outbox.pending_count() == 4
    with pytest.raises(CommandError, match="broker is unavailable"):
        call_command("relay_outbox")
    assert outbox.pending_count() == 4  # nothing lost while it waits

    # --- Redis back: the relay publishes everything once, a worker sends it once -------------
    own_redis.start()
    redis_status.reset()
    assert BANNER not in web.get("/").content.decode()
    call_command("relay_outbox")
    assert outbox.pending_count() == 0
    assert outbox.relay().published == 0  # a second run publishes nothing again
    queue = app.conf.task_default_queue
    messages = _queued(own_redis, queue)
    ids = sorted(m["headers"]["id"] for m in messages)
    assert ids == sorted(outbox.task_id(m) for m in OutboxMessage.objects.all())
    assert {m["headers"]["task"] for m in messages} == {"contributions.send_reminder_batch"}

    worker, _node = start_worker(REMINDER_SEND_FROM_HOUR="0", REMINDER_SEND_UNTIL_HOUR="24")
    try:
        wait_for(lambda: Reminder.objects.filter(state="sent").count() == 4, timeout=60)
    finally:
        stop(worker)
    references = sorted(m["reference"] for m in gateway.state.messages)
    assert references == sorted(
        f"bpu-rem-{pk}" for pk in Reminder.objects.values_list("pk", flat=True)
    )
    assert gateway.state.stats()["duplicates"] == 0
    texts = {m["reference"]: m["text"] for m in gateway.state.messages}
    receipt = Reminder.objects.get(kind="payment_receipt", participant=person)
    assert "TRX" not in texts[f"bpu-rem-{receipt.pk}"]  # the cash reference is CASH-...
    assert (
        person.kpj_number
        in texts[f"bpu-rem-{Reminder.objects.get(kind='welcome', participant=person).pk}"]
    )


@pytest.mark.django_db
def test_throttle_counts_in_redis_and_fails_open_while_it_is_down(
    refdata: Any, own_redis: DedicatedRedis, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.API_THROTTLE_RATE = "2/min"
    token = create_api_client(name="throttled", scope="admin").token
    web = Client()

    def call() -> int:
        return web.get("/api/v1/occupations/", HTTP_AUTHORIZATION=f"Token {token}").status_code

    assert [call(), call(), call()] == [200, 200, 429]
    own_redis.stop()
    time.sleep(0.6)
    caplog.set_level(logging.WARNING)
    assert [call(), call(), call()] == [200, 200, 200]
    assert "API throttle failing open" in caplog.text
    own_redis.start()  # empty again (no persistence): counting restarts
    redis_status.reset()
    assert [call(), call(), call()] == [200, 200, 429]


@pytest.mark.django_db
def test_outbox_rows_roll_back_with_their_transaction(register: Any, settings: Any) -> None:
    """A registration that fails writes no outbox row: tasks are queued only by what commits."""
    from enrollment.errors import RegistrationError

    register(nik=nik_for(serial=81), consent_reminders=True)
    assert OutboxMessage.objects.count() == 1
    with pytest.raises(RegistrationError):
        register(nik=nik_for(serial=81), consent_reminders=True)  # duplicate NIK
    assert OutboxMessage.objects.count() == 1
    settings.NOTIFY_ON_REGISTRATION = False
    register(nik=nik_for(serial=82), consent_reminders=True)
    assert OutboxMessage.objects.count() == 1
