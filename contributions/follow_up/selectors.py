"""Read paths of the follow-up queue: who to contact next, how (a WhatsApp link with the pay
link), and what the contacts came to (outcomes per month).

Order of the queue (as of the portal's today D):
0. a promise whose date has come (promised date <= D): back on top, earliest promise first;
1. participants in grace, closest to lapsing first: days left = coverage.lapse_date(N) - D for
   the first unpaid month N. lapse_date is strictly increasing in N, so ordering by N in SQL is
   ordering by days left (tests/contributions/test_follow_up.py checks it against lapse_date);
2. lapsed participants, the most recently lapsed first (likeliest to reactivate);
3. a promise still to come (promised date > D), earliest first.
Within the same days left, the value at stake first: participants with the same first unpaid
month owe the same months, so their amount due follows their declared income (JKK and JHT are
a share of it, JKM is flat); the declared income (descending) orders them.
The latest outcome of a participant decides 0/3 and leaving the queue ("moved", "died"); a
payment received after that outcome makes it stale (the participant is handled as if no outcome
were recorded), so last month's promise does not pin a participant who fell behind again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from django.db.models import (
    Case,
    Count,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import formats, translation
from django.utils.translation import gettext as _

from enrollment import permissions
from enrollment.models import Participant, Region

from .. import coverage as rules
from ..messaging import pay_links
from ..models import Coverage, CoverageStatus, Payment, Reminder
from ..rates import add_months
from ..selectors import amount_due_now
from .models import LEAVES_QUEUE, FollowUpOutcome, Outcome

# The status filter of the queue page: its values and what they select.
STATUS_FILTERS = ("grace", "lapsed", "promised", "out")
GROUP_PROMISE_DUE, GROUP_GRACE, GROUP_LAPSED, GROUP_PROMISE_WAITING, GROUP_OUT = 0, 1, 2, 3, 9


def _latest(field: str) -> Subquery:
    latest = FollowUpOutcome.objects.filter(participant=OuterRef("pk")).order_by("-id")
    return Subquery(latest.values(field)[:1])


def follow_up_queue(
    user: Any, *, as_of: date, village: str = "", status: str = ""
) -> QuerySet[Participant]:
    """The user's participants to follow up (scope: the `follow_up` row of
    enrollment/permissions.py), in the order of the module docstring. `status` one of
    STATUS_FILTERS or "" (everyone in the queue); "out" lists those a "moved" or "died" outcome
    took out (a later outcome brings them back). `village`: a village code or ""."""
    qs = (
        permissions.participants_in_scope(user, "follow_up")
        .filter(coverage__status__in=[CoverageStatus.GRACE, CoverageStatus.LAPSED])
        .select_related("coverage", "village")
        .annotate(
            last_outcome=_latest("outcome"),
            last_promised=_latest("promised_date"),
            last_recorded_at=_latest("recorded_at"),
            last_phone=_latest("phone"),
        )
        .annotate(
            paid_since=Exists(
                # received by the portal after the outcome (created_at: paid_at is what the
                # channel says, and a bank file of yesterday's payments may predate it)
                Payment.objects.filter(
                    participant=OuterRef("pk"), created_at__gt=OuterRef("last_recorded_at")
                )
            )
        )
        .annotate(
            group=Case(
                When(
                    Q(last_outcome__in=LEAVES_QUEUE, paid_since=False),
                    then=Value(GROUP_OUT),
                ),
                When(
                    Q(last_outcome=Outcome.PROMISED, paid_since=False, last_promised__lte=as_of),
                    then=Value(GROUP_PROMISE_DUE),
                ),
                When(
                    Q(last_outcome=Outcome.PROMISED, paid_since=False, last_promised__gt=as_of),
                    then=Value(GROUP_PROMISE_WAITING),
                ),
                When(coverage__status=CoverageStatus.GRACE, then=Value(GROUP_GRACE)),
                default=Value(GROUP_LAPSED),
                output_field=IntegerField(),
            ),
            # coverage.next_unpaid: the month after paid_through, or the start month
            first_unpaid=Coalesce(
                Func(
                    F("coverage__paid_through"),
                    template="(%(expressions)s + interval '1 month')::date",
                    output_field=DateField(),
                ),
                F("coverage__start_month"),
            ),
        )
    )
    if village:
        qs = qs.filter(village_id=village)
    qs = qs.filter(group=GROUP_OUT) if status == "out" else qs.exclude(group=GROUP_OUT)
    if status in ("grace", "lapsed"):
        qs = qs.filter(coverage__status=status)
    elif status == "promised":
        qs = qs.filter(group__in=[GROUP_PROMISE_DUE, GROUP_PROMISE_WAITING])
    return qs.order_by(
        "group",
        # the promised date orders only the promise groups: a promise a payment ended leaves
        # its participant ordered as if none were recorded
        Case(
            When(group__in=[GROUP_PROMISE_DUE, GROUP_PROMISE_WAITING], then=F("last_promised")),
            output_field=DateField(),
        ).asc(nulls_last=True),
        "coverage__status",  # 'grace' < 'lapsed' (within a promise group)
        F("coverage__lapsed_since").desc(nulls_last=True),
        "first_unpaid",
        F("declared_income").desc(),
        "id",
    )


def queue_villages(user: Any, *, limit: int = 300) -> list[tuple[str, str]]:
    """(code, name) of the villages of the user's participants in grace or lapsed, for the
    village filter (at most `limit`; a wider scope filters by typing the code in the URL)."""
    codes = (
        permissions.participants_in_scope(user, "follow_up")
        .filter(coverage__status__in=[CoverageStatus.GRACE, CoverageStatus.LAPSED])
        .values_list("village_id", flat=True)
        .distinct()
        .order_by("village_id")[:limit]
    )
    return list(
        Region.objects.filter(pk__in=list(codes)).order_by("name").values_list("code", "name")
    )


# --- one row of the queue page ---------------------------------------------------------------
@dataclass(frozen=True)
class QueueRow:
    participant: Participant
    status: str
    days_left: int | None  # days before the lapse (grace); None when lapsed
    lapse_date: date | None
    lapsed_since: date | None
    months_due: int
    amount_due: int | None
    last_outcome: str | None
    last_promised: date | None
    promise_due: bool
    phone_flagged: bool
    whatsapp_url: str
    tel_url: str
    pay_link: str


def days_left(cov: Coverage, as_of: date) -> tuple[int, date]:
    """Days from `as_of` to the lapse (the rule: coverage.lapse_date of the first unpaid month)
    and that date."""
    when = rules.lapse_date(rules.next_unpaid(cov.paid_through, cov.start_month))
    return (when - as_of).days, when


def _pay_links(participants: list[Participant], as_of: date) -> dict[int, str]:
    """A fresh pay link for each participant who has had a reminder that carries one (the pay
    page shows what is due at the visit, so the latest such reminder serves)."""
    latest = (
        Reminder.objects.filter(
            participant_id__in=[p.pk for p in participants], kind__in=pay_links.LINKED_KINDS
        )
        .order_by("participant_id", "-id")
        .distinct("participant_id")
    )
    return {r.participant_id: pay_links.url_for(r, today=as_of) for r in latest}


def _rupiah(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def whatsapp_message(
    participant: Participant,
    *,
    amount: int | None,
    lapse_on: date | None,
    link: str,
) -> str:
    """The pre-filled message, in the participant's language (Bahasa Indonesia unless they chose
    English): amount due, the lapse date (or that cover has lapsed) and the pay link, or where to
    pay when there is no link."""
    language = "en" if (participant.language or "").startswith("en") else "id"
    with translation.override(language):
        values = {
            "name": participant.full_name.split()[0] if participant.full_name else "",
            "kpj": participant.kpj_number,
            "amount": _rupiah(amount or 0),
            "date": formats.date_format(lapse_on, "j F Y") if lapse_on else "",
        }
        if lapse_on is not None:
            text = _(
                "Hello %(name)s, your BPJS Ketenagakerjaan BPU contribution (KPJ %(kpj)s) of "
                "Rp %(amount)s is unpaid. Please pay before %(date)s so that your protection "
                "does not lapse."
            )
        else:
            text = _(
                "Hello %(name)s, your BPJS Ketenagakerjaan BPU protection (KPJ %(kpj)s) has "
                "lapsed. Pay Rp %(amount)s to be protected again from this month."
            )
        text = text % values
        if link:
            tail = _("Pay here: %(link)s") % {"link": link}
        else:
            tail = _("You can pay at a bank, Alfamart/Indomaret, an e-wallet or through me.")
        return f"{text} {tail}"


def whatsapp_url(phone: str, message: str) -> str:
    """https://wa.me/<number>?text=<message>: the number in international form without '+'
    (+6281234567890 -> 6281234567890, as wa.me requires), the text percent-encoded (UTF-8).
    Empty when the phone is not an Indonesian number."""
    digits = phone.lstrip("+")
    if not (digits.startswith("62") and digits.isdigit() and 9 <= len(digits) <= 15):
        return ""
    return f"https://wa.me/{digits}?text={quote(message, safe='')}"


def queue_rows(participants: list[Participant], *, as_of: date) -> list[QueueRow]:
    """What the queue page shows for one page of `follow_up_queue` (≤ a page, so the amount due
    is the full quote per row, the one quote service of contributions/quotes.py)."""
    links = _pay_links(participants, as_of)
    rows = []
    for p in participants:
        cov = p.coverage
        due = amount_due_now(p, cov, as_of)
        amount = due["amount"] if isinstance(due["amount"], int) else None
        months = due["months"] if isinstance(due["months"], int) else 0
        left: int | None
        lapse_on: date | None
        if cov.status == CoverageStatus.GRACE:
            left, lapse_on = days_left(cov, as_of)
        else:
            left, lapse_on = None, None
        link = links.get(p.pk, "")
        last_outcome = getattr(p, "last_outcome", None)
        last_promised = getattr(p, "last_promised", None)
        message = whatsapp_message(p, amount=amount, lapse_on=lapse_on, link=link)
        rows.append(
            QueueRow(
                participant=p,
                status=cov.status,
                days_left=left,
                lapse_date=lapse_on,
                lapsed_since=cov.lapsed_since,
                months_due=months,
                amount_due=amount,
                last_outcome=last_outcome,
                last_promised=last_promised,
                promise_due=getattr(p, "group", None) == GROUP_PROMISE_DUE,
                phone_flagged=last_outcome == Outcome.WRONG_NUMBER
                and getattr(p, "last_phone", None) == p.phone,
                whatsapp_url=whatsapp_url(p.phone, message),
                tel_url=f"tel:{p.phone}" if p.phone else "",
                pay_link=link,
            )
        )
    return rows


# --- analytics -------------------------------------------------------------------------------
def outcomes_per_month(user: Any, *, as_of: date, months: int = 6) -> list[dict[str, Any]]:
    """Per month (the day the outcome was recorded, Asia/Jakarta), newest first, for the
    participants in the user's `follow_up` scope over the last `months` months: the count of each
    outcome, the contacts in all, and of that month's promises how many were kept - a payment
    received (paid_at, local day) from the day of the promise up to and including the promised
    date - and how many were due by `as_of` (promised date before today: kept or broken).
    A payment later reversed still counts (the reversal is a separate ledger fact)."""
    first = add_months(rules.month_start(as_of), -(months - 1))
    kept = Exists(
        Payment.objects.filter(
            participant=OuterRef("participant"),
            paid_at__date__gte=OuterRef("recorded_on"),
            paid_at__date__lte=OuterRef("promised_date"),
        )
    )
    counts = {o.value: Count("id", filter=Q(outcome=o.value)) for o in Outcome}
    rows = (
        FollowUpOutcome.objects.filter(
            participant__in=permissions.participants_in_scope(user, "follow_up"),
            recorded_on__gte=first,
            recorded_on__lte=as_of,
        )
        .annotate(kept=kept, month=TruncMonth("recorded_on"))
        .values("month")
        .annotate(
            total=Count("id"),
            promises_kept=Count("id", filter=Q(outcome=Outcome.PROMISED, kept=True)),
            promises_due=Count("id", filter=Q(outcome=Outcome.PROMISED, promised_date__lt=as_of)),
            **counts,
        )
        .order_by("-month")
    )
    return [dict(r) for r in rows]


def promise_window(as_of: date, days: int = 60) -> tuple[date, date]:
    """The dates a promise may name on the form: today up to `days` ahead (a hint, not a rule)."""
    return as_of, as_of + timedelta(days=days)
