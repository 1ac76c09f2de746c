"""Benchmark-only URLconf (bench/bench_settings.py): the app's URLs plus bare Django views that
do one INSERT with nothing around it - the registration's (the baseline of bench_concurrency.py)
and a payment's (the baseline of bench_bills.py). Not part of the app: bpjsportal/urls.py never
includes it."""

from __future__ import annotations

import json

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from enrollment.kpj import luhn_check_digit
from enrollment.pii import nik_columns

INSERT = """
INSERT INTO enrollment_participant (
    nik_digest, nik_encrypted, kpj_number, full_name, birth_date, sex, phone, email, language,
    village_id, province_id, regency_id, address, occupation_id, declared_income, jht, channel,
    consent_data, consent_reminders, created_at, updated_at, sync_txid)
VALUES (%s, %s, %s, %s, %s, %s, %s, '', 'id', %s, %s, %s, %s, %s, %s, false, 'partner',
        true, false, now(), now(), 0)
RETURNING id
"""


@csrf_exempt
def bare_register(request: HttpRequest) -> HttpResponse:
    """JSON in, the KPJ from the same sequence, one INSERT of the same row (the NIK stored as
    the service stores it: keyed digest + ciphertext), JSON out: no authentication, validation,
    serializer, duplicate check or hooks."""
    row = json.loads(request.body)
    village = row["village"]
    chain = village.split(".")
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('enrollment_kpj_seq')")
        digits = f"{cursor.fetchone()[0]:010d}"
        cursor.execute(
            INSERT,
            [
                *nik_columns(row["nik"]),
                digits + luhn_check_digit(digits),
                row["full_name"],
                row["birth_date"],
                row["sex"],
                "+62" + row["phone"][1:],
                village,
                chain[0],
                ".".join(chain[:2]),
                row["address"],
                row["occupation"],
                row["declared_income"],
            ],
        )
        (pk,) = cursor.fetchone()
    return JsonResponse({"id": pk}, status=201)


PAYMENT_INSERT = """
INSERT INTO contributions_payment (
    participant_id, amount, months, period_start, payer, channel, reference, paid_at,
    reactivation, created_at, sync_txid)
VALUES (%s, %s, 1, date_trunc('month', now())::date, 'participant', 'retail', %s, now(), false,
        now(), 0)
RETURNING id
"""


@csrf_exempt
def bare_payment(request: HttpRequest) -> HttpResponse:
    """JSON in, one INSERT of a payment row, JSON out: no authentication, signature, bill,
    quote, ledger, coverage, notification record or receipt."""
    row = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(PAYMENT_INSERT, [row["participant"], row["amount"], row["reference"]])
        (pk,) = cursor.fetchone()
    return JsonResponse({"id": pk}, status=201)


urlpatterns = [
    path("bench/bare/register/", bare_register),
    path("bench/bare/payment/", bare_payment),
    path("", include("bpjsportal.urls")),
]
