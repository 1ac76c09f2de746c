"""Contribution tables: versioned rate schedules, income levels and temporary discounts."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from enrollment.models import PayerType
from enrollment.sharding import ParticipantRow, UniqueKeyed


class RateSchedule(models.Model):
    """The BPU contribution rates in force from `effective_from` (a change is a new row).

    Rates in basis points (100 = 1 %) so amounts stay integer Rupiah. Sources: PP 44/2015
    Lampiran II as amended (JKK 1 % of the declared income level, JKM Rp 6,800 flat) and
    PP 46/2015 with PP 60/2015 (JHT 2 %); see docs/architecture.md "Regulation facts".
    """

    effective_from = models.DateField(unique=True)
    jkk_rate_bp = models.PositiveIntegerField(help_text="JKK, basis points of declared income")
    jkm_monthly = models.PositiveIntegerField(help_text="JKM, flat Rupiah per month")
    jht_rate_bp = models.PositiveIntegerField(help_text="JHT, basis points of declared income")
    source = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("rate schedule")
        verbose_name_plural = _("rate schedules")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"BPU rates from {self.effective_from:%Y-%m-%d}"


class IncomeLevel(models.Model):
    """A declared-income level (nominal penghasilan) of a schedule and the income band it covers."""

    schedule = models.ForeignKey(RateSchedule, on_delete=models.CASCADE, related_name="levels")
    amount = models.BigIntegerField()
    income_from = models.BigIntegerField(default=0)
    income_to = models.BigIntegerField(null=True, blank=True)  # open-ended top band

    class Meta:
        verbose_name = _("income level")
        verbose_name_plural = _("income levels")
        ordering = ["schedule", "amount"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "amount"], name="income_level_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="income_level_positive"),
        ]

    def __str__(self) -> str:
        return f"Rp {self.amount:,}"


class RateDiscount(models.Model):
    """A temporary discount on some programmes for some months, e.g. PP 50/2025 (50 % off JKK and
    JKM for BPU participants; transport Jan 2026-Mar 2027, other sectors Apr-Dec 2026)."""

    name = models.CharField(max_length=120)
    sector = models.CharField(max_length=16, blank=True, help_text="occupation sector; blank = all")
    programmes = models.CharField(max_length=32, help_text="comma-separated, e.g. JKK,JKM")
    percent = models.PositiveSmallIntegerField()
    first_month = models.DateField(help_text="first day of the first discounted month")
    last_month = models.DateField(help_text="first day of the last discounted month")
    # Payer types the discount does not apply to (enrollment.PayerType values, comma-separated):
    # PP 50/2025 Pasal 3 excludes contributions paid from the APBN or an APBD.
    excluded_payer_types = models.CharField(
        max_length=64,
        blank=True,
        default="apbn,apbd,village_fund",
        db_default="apbn,apbd,village_fund",
        help_text="comma-separated payer types that pay the undiscounted rate",
    )
    source = models.TextField()

    class Meta:
        verbose_name = _("contribution discount")
        verbose_name_plural = _("contribution discounts")
        ordering = ["first_month", "sector"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gt=0, percent__lte=100), name="discount_percent_range"
            ),
            models.CheckConstraint(
                condition=Q(last_month__gte=models.F("first_month")), name="discount_months_order"
            ),
            models.UniqueConstraint(fields=["name", "sector"], name="discount_name_sector_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sector or _('all sectors')})"

    def programme_list(self) -> list[str]:
        return [p.strip() for p in self.programmes.split(",") if p.strip()]

    def excluded_payer_list(self) -> list[str]:
        return [p.strip() for p in self.excluded_payer_types.split(",") if p.strip()]


class Holiday(models.Model):
    """A day on which contributions cannot fall due: a national holiday or a *cuti bersama* day of
    the joint ministerial decree (SKB) of its year, or a day an admin adds (a decree amended).

    A month's due day (15) on such a day - or on a Saturday or Sunday, settings.BPU_DUE_SKIPS_
    WEEKENDS - moves to the next working day ("Apabila tanggal 15 jatuh pada hari libur, maka
    iuran dibayarkan pada hari kerja berikutnya", PP 44/2015 as reported by Kontan/Kompas);
    contributions/due_dates.py. Every change is audited (bpjsportal.audit HolidayEvent).
    """

    class Kind(models.TextChoices):
        NATIONAL = "national", _("National holiday")
        COLLECTIVE_LEAVE = "cuti_bersama", _("Collective leave (cuti bersama)")
        OTHER = "other", _("Other non-working day")

    day = models.DateField(_("day"), unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    source = models.TextField(_("source"), help_text=_("the decree or notice that sets the day"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["day"]
        # Plain words: the audit event model's name is built from them at import time
        # (bpjsportal/audit/models.py), and a translated one would differ by locale.

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.name}"


class CoverageStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    GRACE = "grace", _("Grace period")
    LAPSED = "lapsed", _("Lapsed")


class Coverage(models.Model):
    """One row per participant: the denormalised coverage facts, kept by the payment services in
    the same transaction as the ledger entry, refreshed daily as dates pass
    (contributions.tasks.refresh_coverage_statuses). `check_ledger` proves they agree with the
    ledger. Rules: contributions/coverage.py."""

    participant = models.OneToOneField(
        "enrollment.Participant",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="coverage",
    )
    status = models.CharField(
        max_length=8, choices=CoverageStatus.choices, default=CoverageStatus.GRACE, db_index=True
    )
    # First day of the registration month: the first month owed by a participant who never paid.
    start_month = models.DateField()
    # First day of the last month paid for; null = never paid.
    paid_through = models.DateField(null=True, blank=True)
    # First month of the current unbroken run of paid months (reset by a reactivation).
    active_since = models.DateField(null=True, blank=True)
    # The day the participant counted as lapsed (cleared by a reactivation).
    lapsed_since = models.DateField(null=True, blank=True)
    continuous_months = models.PositiveIntegerField(default=0)
    reactivations = models.PositiveIntegerField(default=0)
    # Sum of the participant's ledger entries, in Rupiah.
    balance = models.BigIntegerField(default=0)
    # The participant's current payer: the payer type of the latest payment not reversed
    # (enrollment.PayerType; "self" before any payment). The dashboards split by it.
    payer_type = models.CharField(
        max_length=16, choices=PayerType.choices, default=PayerType.SELF, db_default=PayerType.SELF
    )
    # Credit on account (ContributionCredit, PP 50/2025): what later payments may still use.
    credit = models.BigIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("coverage")
        verbose_name_plural = _("coverages")
        indexes = [models.Index(fields=["status", "paid_through"], name="coverage_status_paid")]
        constraints = [
            models.CheckConstraint(
                condition=Q(paid_through__isnull=True) | Q(paid_through__day=1),
                name="coverage_paid_through_first_of_month",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.status}"


class Payment(ParticipantRow, UniqueKeyed):
    """Money received for one participant, for 1-12 consecutive months starting `period_start`.

    Identified by the channel's reference: UNIQUE(channel, reference) makes a replay one payment.
    Never edited; a correction is a reversal entry in the ledger."""

    class Payer(models.TextChoices):
        PARTICIPANT = "participant", _("Participant")
        AGENT = "agent", _("Agent collecting cash")
        SPONSOR = "sponsor", _("Sponsor or partner")

    class Channel(models.TextChoices):
        BANK = "bank", _("Bank")
        CREDIT = "credit", _("Credit on account (PP 50/2025)")
        RETAIL = "retail", _("Retail outlet")
        EWALLET = "ewallet", _("E-wallet")
        AGENT = "agent", _("Agent")
        PARTNER = "partner", _("Partner")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.BigIntegerField()
    months = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    payer = models.CharField(max_length=12, choices=Payer.choices)
    # Whose money (enrollment.PayerType): decides the price (budget-paid: no PP 50/2025 discount).
    payer_type = models.CharField(
        max_length=16, choices=PayerType.choices, default=PayerType.SELF, db_default=PayerType.SELF
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    reference = models.CharField(max_length=128)
    paid_at = models.DateTimeField()
    collected_by = models.ForeignKey(
        "enrollment.StaffProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="collections",
    )
    sponsor = models.ForeignKey(
        "enrollment.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    batch = models.ForeignKey(
        "SponsorBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    reactivation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Incremental sync position, set by a trigger (migration 0004; bpjsportal/core/api/sync.py).
    sync_txid = models.BigIntegerField(default=0, editable=False)

    UNIQUE_KEY_CONSTRAINTS = {"payment_ref": "payment_channel_ref"}

    def unique_keys(self) -> list[tuple[str, str, int]]:
        """(channel, reference) is unique across all payments (enrollment/unique_keys.py)."""
        return [("payment_ref", f"{self.channel}\x1f{self.reference}", self.participant_id)]

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-paid_at", "-id"]
        indexes = [
            models.Index(fields=["participant", "-paid_at"]),
            models.Index(fields=["sync_txid", "id"], name="payment_sync_idx"),
            # the day's collections for the reporting rollups
            models.Index(fields=["paid_at"], name="payment_paid_at"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["channel", "reference"], name="payment_channel_ref"),
            models.CheckConstraint(
                condition=Q(months__gte=1, months__lte=12), name="payment_months_1_12"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(period_start__day=1), name="payment_period_first_of_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.reference} Rp {self.amount:,}"


class SponsorBatch(models.Model):
    """One sponsor payment split into per-participant payments, posted all or nothing."""

    sponsor = models.ForeignKey("enrollment.Partner", on_delete=models.PROTECT)
    # the sponsor's payer type, unless the batch says otherwise
    payer_type = models.CharField(
        max_length=16,
        choices=PayerType.choices,
        default=PayerType.SPONSOR,
        db_default=PayerType.SPONSOR,
    )
    reference = models.CharField(max_length=64)
    participant_months = models.PositiveIntegerField(help_text="months paid, summed over rows")
    row_count = models.PositiveIntegerField()
    total_amount = models.BigIntegerField()
    paid_at = models.DateTimeField()
    # SHA-256 of the canonical request (reference, paid_at, total, rows in order): a replay must
    # send the same request to get this batch back (contributions/services.py, batch_digest).
    # Empty on batches posted before the digest was kept: those compare row count and total.
    request_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sponsor batch")
        verbose_name_plural = _("sponsor batches")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["sponsor", "reference"], name="batch_sponsor_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.sponsor_id}:{self.reference} ({self.row_count})"


class SponsorConsent(ParticipantRow):
    """Leave for a partner to pay the contributions of a participant it did not register: the
    participant's consent confirmed in person by field staff, or an administrator's approval.
    Without it (and unless the partner registered the participant) a sponsor batch or payment
    from that partner finds no such participant. It never widens what the partner may read or
    change (enrollment/permissions.py). Unique per (participant, sponsor): the participant leads
    the key, as in every table that will be distributed by participant (the `id` primary key
    becomes (participant_id, id) with the other tables' keys, docs/operations.md: the audit
    trigger library cannot track a composite primary key yet). Withdrawn, never deleted."""

    class Method(models.TextChoices):
        IN_PERSON = "in_person", _("Participant's consent, confirmed in person by field staff")
        ADMIN = "admin", _("Approved by an administrator")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="sponsor_consents"
    )
    sponsor = models.ForeignKey("enrollment.Partner", on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=16, choices=Method.choices)
    note = models.CharField(max_length=255, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("sponsor consent")
        verbose_name_plural = _("sponsor consents")
        # Plain words: the audit event model's name is built from them at import time
        # (bpjsportal/audit/models.py), and a translated one would differ by locale.
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "sponsor"], name="sponsor_consent_participant_sponsor"
            )
        ]
        indexes = [
            models.Index(
                fields=["sponsor", "participant"],
                condition=Q(withdrawn_at__isnull=True),
                name="sponsor_consent_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} <- {self.sponsor_id} ({self.method})"


class LedgerEntry(ParticipantRow):
    """An append-only money movement. The database refuses UPDATE, DELETE and TRUNCATE
    (migration 0003); a correction is a reversal entry pointing at the entry it cancels.

    Amounts are signed Rupiah: a payment is positive, its reversal the same amount negative.
    Monthly dues are not posted as rows (see docs/contributions.md, "Ledger")."""

    class Kind(models.TextChoices):
        DUE = "due", _("Receivable")  # owed by a payer (negative): contributions/corrections.py
        PAYMENT = "payment", _("Payment")
        REVERSAL = "reversal", _("Reversal")
        ADJUSTMENT = "adjustment", _("Adjustment")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.BigIntegerField()
    months = models.PositiveSmallIntegerField(default=0)
    period_start = models.DateField(null=True, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["participant", "id"], name="ledger_participant_id"),
            # reversals and adjustments by day (reporting rollups); payments go by paid_at
            models.Index(
                fields=["created_at"],
                condition=Q(kind__in=["reversal", "adjustment", "due"]),
                name="ledger_not_payment_created",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="payment")
                | Q(amount__gt=0, months__gte=1, months__lte=12, payment__isnull=False),
                name="ledger_payment_shape",
            ),
            models.CheckConstraint(
                condition=~Q(kind="reversal") | Q(amount__lt=0, reverses__isnull=False),
                name="ledger_reversal_shape",
            ),
            models.CheckConstraint(
                condition=Q(kind="reversal") | Q(reverses__isnull=True),
                name="ledger_only_reversals_reverse",
            ),
            # a receivable (kind due: contributions/corrections.py) at most once per payment
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(kind="due"),
                name="ledger_one_receivable_per_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} Rp {self.amount:,}"


class ContributionCredit(ParticipantRow):
    """Money on a participant's account that pays later months: PP 50/2025 (Pasal 4) counts
    what was paid for months the adjustment later discounted "untuk Iuran JKK dan JKM bulan
    berikutnya" (contributions/credits.py). Append-only movements (migration: a trigger
    refuses UPDATE and DELETE): a `grant` (+, from the overpaid payment) and `use`s (-, by the
    payment that the credit paid part or all of). Coverage.credit is their sum, kept with them
    under the coverage row's lock (check_ledger compares the two)."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Credit granted")
        USE = "use", _("Credit used")
        RETURN = "return", _("Credit returned (its payment reversed)")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="credits"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.BigIntegerField()
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="credits")
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contribution credit")
        verbose_name_plural = _("contribution credits")
        ordering = ["participant", "id"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "id"], name="credit_participant_id"),
            models.UniqueConstraint(
                fields=["payment"], condition=Q(kind="grant"), name="credit_one_grant_per_payment"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["grant", "return"], amount__gt=0) | Q(kind="use", amount__lt=0)
                ),
                name="credit_sign_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} Rp {self.amount:,}"


# The channels money comes through from outside (every input path checks against these); the
# "credit" channel is the portal's own, for months paid from credit on account (credits.py).
RECEIVING_CHANNELS = tuple(c for c in Payment.Channel.values if c != Payment.Channel.CREDIT)


class ImportReport(models.Model):
    """The outcome of one reconciliation file import (command or admin upload)."""

    channel = models.CharField(max_length=8, choices=Payment.Channel.choices)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    amount_mismatch = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)  # the first problem rows, capped
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("import report")
        verbose_name_plural = _("import reports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.created_at:%Y-%m-%d %H:%M})"


# --- reminders (rules: contributions/messaging/reminders.py; docs/reminders.md) ------------
class ReminderKind(models.TextChoices):
    DUE_SOON = "due_soon", _("Due soon")
    DUE_TODAY = "due_today", _("Due today")
    OVERDUE = "overdue", _("Overdue")
    ABOUT_TO_LAPSE = "about_to_lapse", _("About to lapse")
    LAPSED_WINBACK = "lapsed_winback", _("Lapsed: win back")
    PAYMENT_THANKS = "payment_thanks", _("Payment received: thank you")
    # Sent at once from write paths through the outbox (contributions/messaging/notifications.py),
    # not planned daily: a welcome with the KPJ number, a receipt for each payment posted singly.
    WELCOME = "welcome", _("Welcome")
    PAYMENT_RECEIPT = "payment_receipt", _("Payment receipt")
    # An autodebit charge that failed on every try (contributions/autodebit.py).
    AUTODEBIT_FAILED = "autodebit_failed", _("Autodebit failed")


class ReminderChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    EMAIL = "email", _("Email")


HOLDOUT_MAX_PERCENT = 50  # a holdout above half would leave most eligible people unreminded


class ReminderRule(models.Model):
    """When a kind of reminder is sent: `offset_days` from the reference day (the due day of the
    period for the due kinds, the day of the payment for payment_thanks). Admin-editable data."""

    kind = models.CharField(max_length=16, choices=ReminderKind.choices, unique=True)
    offset_days = models.SmallIntegerField(
        help_text="days relative to the due date (negative = before); for payment_thanks, "
        "days after the payment"
    )
    enabled = models.BooleanField(default=True)
    channel = models.CharField(
        max_length=8,
        choices=ReminderChannel.choices,
        blank=True,
        help_text="blank = the participant's preferred channel",
    )
    # The share of eligible participants held out (not reminded) to measure the rule's uplift:
    # contributions/messaging/uplift.py, docs/reminders.md "Holdout and uplift".
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"),
        default=0,
        validators=[
            MinValueValidator(0, _("The holdout must be between 0 and 50 percent.")),
            MaxValueValidator(
                HOLDOUT_MAX_PERCENT, _("The holdout must be between 0 and 50 percent.")
            ),
        ],
        help_text=_(
            "Percent of eligible participants who are not reminded, to measure whether the "
            "reminder works (0 = everyone is reminded; at most 50)."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reminder rule")
        verbose_name_plural = _("reminder rules")
        ordering = ["kind"]
        constraints = [
            models.CheckConstraint(
                condition=Q(offset_days__gte=-28, offset_days__lte=28),
                name="reminder_rule_offset_range",
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0, holdout_percent__lte=HOLDOUT_MAX_PERCENT),
                name="reminder_rule_holdout_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.offset_days:+d} d)"


class ReminderPreference(models.Model):
    """A participant's reminder choices: opt-out (STOP/BERHENTI or staff) and preferred channel."""

    participant = models.OneToOneField(
        "enrollment.Participant",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="reminder_preference",
    )
    opted_out_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    preferred_channel = models.CharField(max_length=8, choices=ReminderChannel.choices, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reminder preference")
        verbose_name_plural = _("reminder preferences")

    def __str__(self) -> str:
        return f"{self.participant_id}: {'opted out' if self.opted_out_at else 'opted in'}"


class ReminderState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    SKIPPED_PAID = "skipped_paid", _("Skipped: paid meanwhile")
    SKIPPED_QUIET_HOURS = "skipped_quiet_hours", _("Skipped: quiet hours")
    OPTED_OUT = "opted_out", _("Opted out")


class Reminder(ParticipantRow):
    """One planned message. UNIQUE(participant, kind, period) makes it exactly-once per due
    period: a second plan, a retried task or a second worker finds the row, never adds one."""

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.CASCADE, related_name="reminders"
    )
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    # First day of the month whose due date the reminder refers to (payment_thanks: the first
    # month the payment covers).
    period = models.DateField()
    # First unpaid month when planned: paid_through >= this means "paid meanwhile".
    month_due = models.DateField(null=True, blank=True)
    planned_for = models.DateField(db_index=True)
    send_after = models.DateTimeField()
    state = models.CharField(
        max_length=20, choices=ReminderState.choices, default=ReminderState.QUEUED
    )
    channel = models.CharField(max_length=8, choices=ReminderChannel.choices)
    # Where it was sent (phone or email): inbound STOP replies are matched on it.
    recipient = models.CharField(max_length=254, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    quiet_deferrals = models.PositiveSmallIntegerField(default=0)
    gateway_message_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    last_error = models.CharField(max_length=255, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # The first visit of the reminder's pay link (contributions/messaging/pay_links.py).
    link_opened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["-planned_for", "-id"]
        indexes = [
            models.Index(
                fields=["send_after"],
                condition=Q(state="queued"),
                name="reminder_queued_send_after",
            ),
            models.Index(fields=["participant", "-planned_for"], name="reminder_participant"),
            models.Index(fields=["planned_for", "channel", "state"], name="reminder_day_figures"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "kind", "period"], name="reminder_once_per_period"
            ),
            models.CheckConstraint(condition=Q(period__day=1), name="reminder_period_first_day"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.kind} {self.period:%Y-%m} {self.state}"


class ReminderAssignment(ParticipantRow):
    """The arm of one eligible participant for one rule and due month, recorded when the rule
    is planned with a holdout: reminded, or held out (no reminder). Deterministic (a keyed hash
    of participant, rule and month: contributions/messaging/uplift.py); the first record wins,
    so a re-plan or a changed key never moves anyone. Append-only in practice (the planner
    inserts with ON CONFLICT DO NOTHING and nothing updates it)."""

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.CASCADE, related_name="reminder_assignments"
    )
    rule = models.ForeignKey(ReminderRule, on_delete=models.PROTECT, related_name="assignments")
    # The due month (first day) the rule fired for; payment_thanks: the month the payment covered.
    period = models.DateField()
    held_out = models.BooleanField()
    # The rule's holdout share when the participant was assigned.
    holdout_percent = models.PositiveSmallIntegerField()
    # The day the rule fired (= the reminder's planned_for): the start of the payment windows.
    assigned_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("reminder holdout assignment")
        verbose_name_plural = _("reminder holdout assignments")
        ordering = ["-assigned_on", "participant_id"]
        indexes = [
            models.Index(fields=["rule", "period"], name="reminder_assignment_rule_month"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "rule", "period"], name="reminder_assignment_once"
            ),
            models.CheckConstraint(
                condition=Q(period__day=1), name="reminder_assignment_period_first_day"
            ),
        ]

    def __str__(self) -> str:
        arm = "held out" if self.held_out else "reminded"
        return f"{self.participant_id} rule {self.rule_id} {self.period:%Y-%m} {arm}"


# --- transactional outbox (contributions/messaging/outbox.py; docs/operations.md "Faults") --
class OutboxMessage(models.Model):
    """A Celery task a write path wants run, saved in the same transaction as the write. The
    relay (task `contributions.relay_outbox`, command `relay_outbox`) publishes unpublished rows
    to the broker in id order; a Redis outage only delays them. Published at least once, under
    the Celery task id `outbox-<id>-<created, µs>` (outbox.task_id): the tasks it carries must
    be idempotent."""

    task = models.CharField(max_length=100)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"], condition=Q(published_at__isnull=True), name="outbox_unpublished"
            ),
            models.Index(
                fields=["published_at"],
                condition=Q(published_at__isnull=False),
                name="outbox_published_at",
            ),
        ]

    def __str__(self) -> str:
        state = "published" if self.published_at else "pending"
        return f"outbox-{self.pk} {self.task} ({state})"


# --- bills: payment codes, and what the channels report about them (docs/api.md, "Bills") ---------
class Bill(ParticipantRow, UniqueKeyed):
    """A payment code a participant pays at a bank, shop or e-wallet: one participant, 1-12
    months from `period_start`, `amount` priced by the quote service when the code was issued
    (contributions/quotes.py), open until `expires_at` (settings.BILL_EXPIRY_HOURS). The code is
    16 digits: "8", a keyed permutation of a sequence value (never reused, not guessable from
    another code: contributions/bills.py) and a Luhn digit."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="bills"
    )
    code = models.CharField(max_length=16)
    months = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    amount = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    expires_at = models.DateTimeField()
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="bill"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    UNIQUE_KEY_CONSTRAINTS = {"bill_code": "bill_code_unique"}

    def unique_keys(self) -> list[tuple[str, str, int]]:
        """A code is unique across all bills (enrollment/unique_keys.py)."""
        return [("bill_code", self.code, self.participant_id)]

    class Meta:
        verbose_name = _("bill")
        verbose_name_plural = _("bills")
        ordering = ["-created_at", "-id"]
        constraints = [
            # A code names one bill for ever (the permutation never repeats a code; this is the
            # database's guard). Keyed by participant too, for the sharded layout.
            models.UniqueConstraint(fields=["code"], name="bill_code_unique"),
            models.UniqueConstraint(
                fields=["participant", "code"], name="bill_participant_code_unique"
            ),
            # One open code per participant and number of months: asking again returns it.
            models.UniqueConstraint(
                fields=["participant", "months"],
                condition=Q(status="open"),
                name="bill_one_open_per_months",
            ),
            models.CheckConstraint(
                condition=Q(months__gte=1, months__lte=12), name="bill_months_1_12"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="bill_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"bill {self.code} Rp {self.amount:,} ({self.status})"


class SuspenseItem(ParticipantRow):
    """Money that could not be applied on its own, held so that none is ever dropped: a
    channel's payment for a bill (an amount other than the bill's, a bill expired or already
    paid), or an agent's field cash (no bill: a receipt the offline field app issued that the
    participant's state refused when it synced - they paid meanwhile elsewhere, the price
    moved; contributions/suspense.py `record_field_cash`). Append-only in the database (migration
    0010): a later resolution is a new row elsewhere, never a change of this one."""

    class Reason(models.TextChoices):
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs from the bill")
        BILL_EXPIRED = "bill_expired", _("Bill expired")
        BILL_PAID = "bill_paid", _("Bill already paid")
        FIELD_CONFLICT = "field_conflict", _("Field cash that could not be applied")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="suspense_items"
    )
    # None: field cash (reason field_conflict), held for a receipt, not for a bill
    bill = models.ForeignKey(
        Bill, null=True, blank=True, on_delete=models.PROTECT, related_name="suspense_items"
    )
    client = models.ForeignKey("enrollment.ApiClient", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8)
    reference = models.CharField(max_length=128)
    amount = models.BigIntegerField()
    paid_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # Field cash only: the months the receipt was for, and the refusal that put it here (its
    # code, its message as first answered, the quote if the refusal had one): a repeat of the
    # receipt is answered with them again, word for word.
    months = models.PositiveSmallIntegerField(null=True, blank=True)
    refusal_code = models.CharField(max_length=32, blank=True)
    refusal_message = models.TextField(blank=True)
    expected = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("suspense item")
        verbose_name_plural = _("suspense items")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["participant", "-created_at"], name="suspense_participant"),
            # a field receipt sent again is looked up by its channel and reference alone
            models.Index(
                fields=["channel", "reference"],
                condition=Q(bill__isnull=True),
                name="suspense_field_receipt",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="suspense_amount_positive"),
            # a bill's money, or field cash with its months and refusal
            models.CheckConstraint(
                condition=(Q(bill__isnull=False) & ~Q(reason="field_conflict"))
                | Q(
                    bill__isnull=True,
                    reason="field_conflict",
                    months__gte=1,
                    months__lte=12,
                    refusal_code__gt="",
                ),
                name="suspense_bill_or_field_cash",
            ),
            # a field receipt is held at most once (the API's exactly-once for field cash)
            models.UniqueConstraint(
                fields=["participant", "channel", "reference"],
                condition=Q(bill__isnull=True),
                name="suspense_field_receipt_once",
            ),
        ]

    def __str__(self) -> str:
        return f"suspense {self.channel}:{self.reference} Rp {self.amount:,} ({self.reason})"


class BillNotification(ParticipantRow, UniqueKeyed):
    """A channel's payment notification for a bill, as answered: the idempotency record. The
    same (client, reference) again with the same body gets the same answer; with another body,
    409 reference_conflict."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        SUSPENSE = "suspense", _("Suspense")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="+"
    )
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="notifications")
    client = models.ForeignKey("enrollment.ApiClient", on_delete=models.PROTECT, related_name="+")

    class Source(models.TextChoices):
        API = "api", _("Notification")
        SETTLEMENT = "settlement", _("Settlement file")

    reference = models.CharField(max_length=128)
    body_sha256 = models.CharField(max_length=64)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    # settlement: recorded from the channel's daily file because its notification never came
    # (a late notification of the same payment is then answered as a replay).
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    suspense = models.OneToOneField(
        SuspenseItem, null=True, blank=True, on_delete=models.PROTECT, related_name="notification"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    UNIQUE_KEY_CONSTRAINTS = {"notification_ref": "bill_notification_ref"}

    def unique_keys(self) -> list[tuple[str, str, int]]:
        """A channel's reference is unique across its notifications (enrollment/unique_keys.py)."""
        return [("notification_ref", f"{self.client_id}\x1f{self.reference}", self.participant_id)]

    class Meta:
        verbose_name = _("bill payment notification")
        verbose_name_plural = _("bill payment notifications")
        constraints = [
            models.UniqueConstraint(fields=["client", "reference"], name="bill_notification_ref"),
            models.CheckConstraint(
                condition=(Q(outcome="applied", payment__isnull=False, suspense__isnull=True))
                | Q(outcome="suspense", payment__isnull=True, suspense__isnull=False),
                name="bill_notification_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"notification {self.reference} ({self.outcome})"


class SuspenseResolution(ParticipantRow):
    """How a suspense item was settled, once: applied to its participant as a payment for the
    months its amount covers, marked for refund, or voided by the channel the same day (the
    money went back to the payer). Append-only (migration 0011) and audited (audit app), with
    the admin or the channel that did it and why."""

    class Action(models.TextChoices):
        APPLY = "apply", _("Applied as a payment")
        REFUND = "refund", _("Marked for refund")
        VOID = "void", _("Voided by the channel")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="+"
    )
    suspense = models.OneToOneField(
        SuspenseItem, on_delete=models.PROTECT, related_name="resolution"
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    reason = models.CharField(max_length=255)
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    client = models.ForeignKey(
        "enrollment.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("suspense resolution")
        verbose_name_plural = _("suspense resolutions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(action="apply", payment__isnull=False))
                | (Q(action__in=["refund", "void"], payment__isnull=True)),
                name="suspense_resolution_payment",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="suspense_resolution_reason"),
        ]

    def __str__(self) -> str:
        return f"suspense {self.suspense_id} {self.action}"


class BillReversal(ParticipantRow):
    """A channel's same-day void of a notification it sent: the payment reversed through the
    ledger (`entry`), or the suspense item it made voided (`resolution`). One per notification:
    the same void again gets the same answer."""

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="+"
    )
    notification = models.OneToOneField(
        BillNotification, on_delete=models.PROTECT, related_name="reversal"
    )
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.OneToOneField(
        SuspenseResolution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bill payment reversal")
        verbose_name_plural = _("bill payment reversals")
        constraints = [
            models.CheckConstraint(
                condition=(Q(entry__isnull=False, resolution__isnull=True))
                | Q(entry__isnull=True, resolution__isnull=False),
                name="bill_reversal_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"reversal of notification {self.notification_id}"


class Settlement(models.Model):
    """One import of a channel's daily settlement file (contributions/settlement.py): what the
    channel says it collected on `day`, reconciled against the notifications it sent."""

    client = models.ForeignKey("enrollment.ApiClient", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    recorded = models.PositiveIntegerField(default=0)
    missing_theirs = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("channel settlement")
        verbose_name_plural = _("channel settlements")
        ordering = ["-day", "-id"]
        constraints = [
            # The same file again changes nothing: it is answered with this row.
            models.UniqueConstraint(fields=["client", "sha256"], name="settlement_file_once"),
        ]

    def __str__(self) -> str:
        return f"settlement {self.client_id} {self.day} ({self.filename})"


class SettlementLine(models.Model):
    """One reconciled line: a row of the file (matched, recorded now, or a problem) or one of
    our notifications the file lacks (missing_theirs). `participant` is empty only for a row
    whose code names no bill."""

    class Outcome(models.TextChoices):
        MATCHED = "matched", _("Matched")
        RECORDED = "recorded", _("Missing on our side: recorded now")
        MISSING_THEIRS = "missing_theirs", _("Missing on the channel's side")
        AMOUNT_DIFFERS = "amount_differs", _("Amount differs from the notification")
        BILL_UNKNOWN = "bill_unknown", _("No bill has this code")
        REFUSED = "refused", _("Refused")

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="lines")
    participant = models.ForeignKey(
        "enrollment.Participant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    line = models.PositiveIntegerField(null=True, blank=True)  # empty: not in the file
    reference = models.CharField(max_length=128)
    code = models.CharField(max_length=32, blank=True)
    amount = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    notification = models.ForeignKey(
        BillNotification, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
        ordering = ["settlement", "line", "id"]
        indexes = [models.Index(fields=["settlement", "outcome"], name="settlement_line_outcome")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.outcome}"


class ParticipantCode(ParticipantRow):
    """A one-time code that logs a participant into their own page (contributions/self_service.py):
    sent by SMS/WhatsApp, kept only as a hash, valid for settings.SELF_SERVICE_CODE_MINUTES,
    dead after SELF_SERVICE_MAX_TRIES wrong tries (which also lock new codes for a while)."""

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.CASCADE, related_name="+"
    )
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    tries = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("participant login code")
        verbose_name_plural = _("participant login codes")
        indexes = [
            models.Index(fields=["participant", "-created_at"], name="participant_code_latest")
        ]

    def __str__(self) -> str:
        return f"code for {self.participant_id} ({self.created_at:%Y-%m-%d %H:%M})"


# --- autodebit: standing orders a channel charges before each due date (contributions/autodebit.py)
class AutodebitMandate(ParticipantRow):
    """A participant's standing order with one payment channel (an e-wallet or a bank, an
    ApiClient of scope channel with an `autodebit_url`): before each due date the portal asks the
    channel to debit `account` for what is due. Set up by the participant on their page or by an
    agent who typed the participant's one-time code; cancelled from the page, by an agent, an
    admin or the channel's callback. At most one active mandate per participant."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    class By(models.TextChoices):
        PARTICIPANT = "participant", _("The participant (own page)")
        AGENT = "agent", _("An agent, with the participant's code")
        CHANNEL = "channel", _("The channel")
        ADMIN = "admin", _("An administrator")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="autodebit_mandates"
    )
    client = models.ForeignKey(
        "enrollment.ApiClient", on_delete=models.PROTECT, related_name="autodebit_mandates"
    )
    # The e-wallet number or bank account the channel debits (shown masked).
    account = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    set_up_by = models.CharField(max_length=12, choices=By.choices)
    agent = models.ForeignKey(
        "enrollment.StaffProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=12, choices=By.choices, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("autodebit mandate")
        verbose_name_plural = _("autodebit mandates")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Keyed by participant too, for the sharded layout (docs/operations.md).
            models.UniqueConstraint(
                fields=["participant", "id"], name="autodebit_mandate_participant_id"
            ),
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(status="active"),
                name="autodebit_one_active_mandate",
            ),
            models.CheckConstraint(
                condition=Q(status="active", cancelled_at__isnull=True)
                | Q(status="cancelled", cancelled_at__isnull=False),
                name="autodebit_cancelled_when",
            ),
        ]

    def __str__(self) -> str:
        return f"mandate {self.pk} of {self.participant_id} ({self.status})"


class AutodebitCharge(ParticipantRow):
    """One due period's charge of a mandate: UNIQUE(participant, mandate, period) makes it one
    row however often the planner runs, and its `key` (the idempotency key sent to the channel,
    also the payment's reference) one debit however often a worker retries it."""

    class State(models.TextChoices):
        PENDING = "pending", _("To charge")
        RETRY = "retry", _("Declined: tried again later")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed: every try declined")
        NOT_NEEDED = "not_needed", _("Not needed: paid otherwise")
        CANCELLED = "cancelled", _("Mandate cancelled")

    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="+"
    )
    mandate = models.ForeignKey(AutodebitMandate, on_delete=models.PROTECT, related_name="charges")
    # The first day of the month whose due date this charge keeps.
    period = models.DateField()
    key = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_on = models.DateField()
    amount = models.BigIntegerField(null=True, blank=True)
    months = models.PositiveSmallIntegerField(null=True, blank=True)
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="autodebit_charge"
    )
    channel_reference = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("autodebit charge")
        verbose_name_plural = _("autodebit charges")
        ordering = ["-period", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_on"],
                condition=Q(state__in=["pending", "retry"]),
                name="autodebit_charge_due",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "mandate", "period"], name="autodebit_charge_once"
            ),
            models.UniqueConstraint(fields=["participant", "key"], name="autodebit_charge_key"),
            models.CheckConstraint(condition=Q(period__day=1), name="autodebit_period_first_day"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
