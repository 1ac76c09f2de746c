"""Fixtures of the contributions tests: participants with coverage, payments at known dates."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import nik_for

_serial = itertools.count(100)


def at(day: date, hour: int = 10) -> datetime:
    """`hour`:`minute` local on `day`, but never later than now: between 00:00 and that hour
    local time (e.g. a run at 00:30 WIB) today's events happen "now", still on `day`."""
    return min(timezone.make_aware(datetime.combine(day, time(hour, 0))), timezone.now())


@pytest.fixture
def make_participant(register: Any) -> Any:
    """A registered participant; `start_month` back-dates the registration (its month and day:
    payments may not be dated before the registration)."""
    from contributions.models import Coverage
    from enrollment.models import Participant

    def _make(start_month: date | None = None, **overrides: Any) -> Any:
        overrides.setdefault("nik", nik_for(serial=next(_serial)))
        participant = register(**overrides)
        if start_month is not None:
            Coverage.objects.filter(pk=participant.pk).update(start_month=start_month)
            registered = min(at(start_month, 9), participant.created_at)
            Participant.objects.filter(pk=participant.pk).update(created_at=registered)
            participant.refresh_from_db()
        return participant

    return _make


@pytest.fixture
def pay() -> Any:
    """Post a payment of the right amount for `months` on `paid_on`; returns (payment, created)."""
    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment

    refs = itertools.count(1)

    def _pay(participant: Any, months: int = 1, paid_on: date | None = None, **kw: Any) -> Any:
        paid_on = paid_on or timezone.localdate()
        cov = Coverage.objects.get(pk=participant.pk)
        due = quote_payment(participant, cov, months=months, as_of=paid_on)
        kw.setdefault("reference", f"REF-{participant.pk}-{next(refs)}")
        kw.setdefault("backdated", True)  # history: older than PAYMENT_MAX_AGE_DAYS is fine
        kw.setdefault("channel", "bank")
        kw.setdefault("payer", "participant")
        return record_payment(
            participant=participant,
            amount=kw.pop("amount", due.amount),
            months=months,
            # 10:00 local on `paid_on`, but never in the future (a run between 00:00 and 10:00 WIB)
            paid_at=min(at(paid_on), timezone.now()),
            **kw,
        )

    return _pay


def assert_ledger_consistent() -> None:
    """Balance == sum of entries for every participant, and check_coverage finds nothing."""
    from django.db.models import Sum

    from contributions.ledger import check_coverage
    from contributions.models import Coverage, LedgerEntry

    sums = dict(
        LedgerEntry.objects.values_list("participant_id").annotate(s=Sum("amount")).order_by()
    )
    for cov in Coverage.objects.all():
        assert cov.balance == sums.get(cov.pk, 0), cov.pk
    assert list(check_coverage(as_of=None)) == []


@pytest.fixture
def consistent() -> Any:
    return assert_ledger_consistent


# --- payment reminders ------------------------------------------------------------------------
VILLAGES = {
    "WIB": "32.73.05.1001",  # Kota Bandung, Jawa Barat (Asia/Jakarta)
    "WITA": "51.71.01.1001",  # Kota Denpasar, Bali (Asia/Makassar)
    "WIT": "91.03.01.1001",  # Papua (Asia/Jayapura)
}
_phones = itertools.count(1)


@pytest.fixture
def gateway(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake SMS/WhatsApp gateway on a free 127.0.0.1 port; settings (and the environment a
    worker subprocess inherits) point at it."""
    from contributions.messaging.fake_gateway import FakeGatewayServer

    server = FakeGatewayServer(0, key="test-gateway-key", callback_secret="test-callback-secret")
    server.start_in_thread()
    settings.REMINDER_GATEWAY_URL = server.url
    settings.REMINDER_GATEWAY_KEY = "test-gateway-key"
    settings.REMINDER_GATEWAY_TIMEOUT = 2.0
    settings.REMINDER_CALLBACK_SECRET = "test-callback-secret"
    settings.REMINDER_RATE_LIMITS = {"sms": 5000.0, "whatsapp": 5000.0, "email": 5000.0}
    for name, value in {
        "REMINDER_GATEWAY_URL": server.url,
        "REMINDER_GATEWAY_KEY": "test-gateway-key",
        "REMINDER_GATEWAY_TIMEOUT": "2",
        "REMINDER_CALLBACK_SECRET": "test-callback-secret",
        "REMINDER_RATE_LIMITS": "sms=5000,whatsapp=5000,email=5000",
        "REMINDER_RETRY_BACKOFF": "0.2",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }.items():
        monkeypatch.setenv(name, value)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def reminded(make_participant: Any, settings: Any) -> Any:
    """A participant who consented to reminders, in the given time zone ("WIB"/"WITA"/"WIT").
    Only the planned reminders: the welcome and receipt messages sent at once from write paths
    are off here (tests/contributions/test_notifications.py has them)."""
    settings.NOTIFY_ON_REGISTRATION = False
    settings.NOTIFY_ON_PAYMENT = False

    def _make(zone: str = "WIB", **overrides: Any) -> Any:
        overrides.setdefault("consent_reminders", True)
        overrides.setdefault("phone", f"+62812{next(_phones):07d}")
        overrides.setdefault("village", VILLAGES[zone])
        return make_participant(**overrides)

    return _make


# --- autodebit ---------------------------------------------------------------------------------
@pytest.fixture
def wallet() -> Any:
    """An e-wallet channel client whose autodebit charge API is the fake channel (in a thread):
    (client, server, token)."""
    from contributions.fake_channel import Channel, FakeChannelServer
    from enrollment.api.clients import create_api_client
    from enrollment.api.signing import signing_secret
    from enrollment.models import ApiClient

    issued = create_api_client(name="Dompet Demo", scope="channel", payment_channel="ewallet")
    server = FakeChannelServer(
        Channel("http://127.0.0.1:9/unused", issued.token, signing_secret(issued.client))
    )
    server.start_in_thread()
    ApiClient.objects.filter(pk=issued.client.pk).update(autodebit_url=server.url)
    issued.client.refresh_from_db()
    yield issued.client, server, issued.token
    server.shutdown()
    server.server_close()


def held_elsewhere(queryset: Any) -> set[int]:
    """The ids of `queryset`'s rows another session holds locked (a worker in the middle of
    its work on them), found without taking a lock: a locked row's xmax is its locker's
    transaction id while that transaction runs. A probe that locked the free rows itself (FOR
    UPDATE SKIP LOCKED, as this did) made a worker that came for one of them at that moment
    skip it ("not_queued"): one message of five was left to the dispatcher's lease, minutes
    later, and the killed-worker test timed out under load. On a Citus cluster, where a row's
    xmax lives on its worker, the rows are still probed with SKIP LOCKED, per shard."""
    from django.db import connection, transaction

    from bpjsportal.core.distribution import on_cluster
    from enrollment.sharding import locked_rows

    if on_cluster():
        with transaction.atomic():
            rows = list(queryset.values_list("pk", "participant_id"))
            # per shard on a cluster (a lock statement stays within one shard there)
            free = {r.pk for r in locked_rows(queryset, [p for _pk, p in rows], skip_locked=True)}
        return {pk for pk, _p in rows} - free
    ids = list(queryset.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {queryset.model._meta.db_table} WHERE id = ANY(%s) "  # noqa: S608
            "AND xmax::text IN (SELECT backend_xid::text FROM pg_stat_activity "
            "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid())",
            [ids],
        )
        return {pk for (pk,) in cursor.fetchall()}
