"""Pay links: every payment reminder carries a short signed link to a page that shows the
participant's masked name, the amount due now and a bill (code, QR, where to pay) - nothing
else without the participant's own login.

A token is `<reminder id>.<expiry day>.<signature>` (base 36, base 36, 16 characters of an
HMAC-SHA256 under SECRET_KEY with its own salt): about 30 characters, so the link fits an SMS.
It expires after settings.PAY_LINK_DAYS days; a changed character fails the signature. The
first visit is noted on the reminder (`link_opened_at`), for the reminders page's figures.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from ..models import Payment, Reminder, ReminderKind

SALT = "bpjsportal.pay-link"
EPOCH = date(2020, 1, 1)
# The reminders that ask for money carry a link (a thanks or a receipt does not).
LINKED_KINDS = {
    ReminderKind.DUE_SOON,
    ReminderKind.DUE_TODAY,
    ReminderKind.OVERDUE,
    ReminderKind.ABOUT_TO_LAPSE,
    ReminderKind.LAPSED_WINBACK,
    ReminderKind.AUTODEBIT_FAILED,
}


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _signature(body: str) -> str:
    mac = salted_hmac(SALT, body, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(mac[:12]).decode("ascii")


def make_token(reminder_id: int, *, expires: date) -> str:
    body = f"{_b36(reminder_id)}.{_b36((expires - EPOCH).days)}"
    return f"{body}.{_signature(body)}"


@dataclass(frozen=True)
class Link:
    reminder_id: int
    expires: date

    @property
    def expired(self) -> bool:
        return timezone.localdate() > self.expires


def read_token(token: str) -> Link | None:
    """The link a token names, or None if it is malformed or its signature is wrong."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 64:
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not constant_time_compare(_signature(body), parts[2]):
        return None
    try:
        return Link(int(parts[0], 36), EPOCH + timedelta(days=int(parts[1], 36)))
    except (ValueError, OverflowError):
        return None


def url_for(reminder: Reminder, *, today: date | None = None) -> str:
    """The absolute link for a reminder sent `today` (settings.PORTAL_URL + /b/<token>/)."""
    expires = (today or timezone.localdate()) + timedelta(days=settings.PAY_LINK_DAYS)
    base = str(settings.PORTAL_URL).rstrip("/")
    return f"{base}/b/{make_token(reminder.pk, expires=expires)}/"


def note_visit(reminder: Reminder) -> None:
    """The first visit of the reminder's link (later ones change nothing)."""
    Reminder.objects.filter(pk=reminder.pk, link_opened_at__isnull=True).update(
        link_opened_at=timezone.now()
    )


PAID_WITHIN = timedelta(days=7)
WINDOW_DAYS = 30


def uplift(day: date) -> list[dict[str, object]]:
    """Per reminder kind (rule), for the payment reminders sent in the WINDOW_DAYS days up to
    `day`: how many were sent, how many of their participants paid within 7 days of the
    message, how many opened the link, and how many of the payers had opened it."""
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    start = end - timedelta(days=WINDOW_DAYS)
    week_after = ExpressionWrapper(F("sent_at") + PAID_WITHIN, output_field=DateTimeField())
    paid = Payment.objects.filter(
        participant_id=OuterRef("participant_id"),
        paid_at__gte=OuterRef("sent_at"),
        paid_at__lt=OuterRef("week_after"),
    )
    rows = (
        Reminder.objects.filter(kind__in=LINKED_KINDS, sent_at__gte=start, sent_at__lt=end)
        .annotate(week_after=week_after)
        .annotate(paid=Exists(paid))
        .values("kind")
        .annotate(
            sent=Count("id"),
            paid_7d=Count("id", filter=Q(paid=True)),
            opened=Count("id", filter=Q(link_opened_at__isnull=False)),
            paid_with_link=Count("id", filter=Q(paid=True, link_opened_at__isnull=False)),
        )
        .order_by("kind")
    )
    labels = dict(ReminderKind.choices)
    return [{**row, "label": labels.get(row["kind"], row["kind"])} for row in rows]
