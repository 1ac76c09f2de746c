"""Commission tables. The figures live in `CommissionRule` rows (seeded by migration 0024 with
their source); statements and their lines are computed by contributions/commissions/services.py.

Database guards (migration 0024): an approved or paid statement cannot be changed or deleted
(only the one step approved -> paid is let through), and the lines of a statement that is not a
draft cannot be inserted, changed or deleted; lines are never updated at all.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class CommissionRule(models.Model):
    """The Perisai incentive in force from `effective_from` (a first of month) until
    `effective_to` (its last month, inclusive; null = open). Rates are basis points (1 500 = 15 %).

    Source of the seeded row: Perdir 13/PERDIR.02/042022, as quoted in BPJS Ketenagakerjaan's
    "908 - Probis Kepesertaan", p. 67 (see `source` / `source_url`, and docs/contributions.md for
    what is verified)."""

    name = models.CharField(max_length=120)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    # acquisition fee per qualifying new participant (JKK + JKM; with JHT as well)
    fee_jkk_jkm = models.BigIntegerField()
    fee_with_jht = models.BigIntegerField()
    # the fee is paid only when the agent acquired at least this many qualifying NIKs that month
    min_new_niks = models.PositiveIntegerField()
    # incentive on contributions received, by membership month (counted from the acquisition)
    band1_last_month = models.PositiveSmallIntegerField()  # 24
    band1_rate_bp = models.PositiveIntegerField()  # 1500
    band2_last_month = models.PositiveSmallIntegerField()  # 60
    band2_rate_bp = models.PositiveIntegerField()  # 500
    # the Perisai office's share of its agents' incentive
    office_share_bp = models.PositiveIntegerField()  # 1000
    # paid by this day of the following month
    pay_by_day = models.PositiveSmallIntegerField(default=5)
    source = models.TextField()
    source_url = models.URLField(max_length=300, blank=True)
    verification = models.TextField(blank=True)

    class Meta:
        verbose_name = _("commission rule")
        verbose_name_plural = _("commission rules")
        ordering = ["-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_from__day=1), name="commission_rule_from_first_day"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__day=1),
                name="commission_rule_to_first_day",
            ),
            models.CheckConstraint(
                condition=Q(band1_last_month__lt=models.F("band2_last_month")),
                name="commission_rule_bands_ordered",
            ),
            models.CheckConstraint(
                condition=Q(band1_rate_bp__lte=10_000, band2_rate_bp__lte=10_000)
                & Q(office_share_bp__lte=10_000),
                name="commission_rule_rates_at_most_100pct",
            ),
            models.UniqueConstraint(fields=["effective_from"], name="commission_rule_from_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.effective_from:%Y-%m})"


class PerisaiOffice(models.Model):
    """A *Kantor Perisai* (the "Wadah"): the organisation its Perisai agents work under; it
    receives `CommissionRule.office_share_bp` of their incentive."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=120)
    branch = models.ForeignKey(
        "enrollment.Branch", on_delete=models.PROTECT, related_name="perisai_offices"
    )

    class Meta:
        verbose_name = _("Perisai office")
        verbose_name_plural = _("Perisai offices")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PerisaiMembership(models.Model):
    """An agent works under an office from `from_month` up to (not including) `until_month`."""

    office = models.ForeignKey(PerisaiOffice, on_delete=models.PROTECT, related_name="members")
    agent = models.ForeignKey(
        "enrollment.StaffProfile", on_delete=models.PROTECT, related_name="perisai_memberships"
    )
    from_month = models.DateField()
    until_month = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("Perisai membership")
        verbose_name_plural = _("Perisai memberships")
        ordering = ["agent", "-from_month"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "from_month"], name="perisai_member_once"),
            models.CheckConstraint(
                condition=Q(from_month__day=1)
                & (Q(until_month__isnull=True) | Q(until_month__gt=models.F("from_month"))),
                name="perisai_member_months",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} @ {self.office_id} from {self.from_month:%Y-%m}"


class PriorBpuNik(models.Model):
    """A NIK known to have been registered in the BPU segment before (BPJS's information system,
    loaded with `manage.py load_prior_bpu_niks`): a participant registered with it after
    `first_registered_on` earns no acquisition fee. Keyed by the NIK's digest (the same keyed
    hash as Participant.nik_digest), never the NIK itself — a lookup table keyed by the value,
    like every global uniqueness."""

    nik_digest = models.BinaryField(primary_key=True, max_length=32)
    first_registered_on = models.DateField()
    source = models.CharField(max_length=60)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("prior BPU NIK")
        verbose_name_plural = _("prior BPU NIKs")

    def __str__(self) -> str:
        return f"NIK seen {self.first_registered_on} ({self.source})"


class StatementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    PAID = "paid", _("Paid")


class CommissionStatement(models.Model):
    """One month's commission of one agent (`agent`) or one Perisai office (`office`)."""

    class Kind(models.TextChoices):
        AGENT = "agent", _("Agent")
        OFFICE = "office", _("Perisai office")

    kind = models.CharField(max_length=6, choices=Kind.choices)
    agent = models.ForeignKey(
        "enrollment.StaffProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="commission_statements",
    )
    office = models.ForeignKey(
        PerisaiOffice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="statements",
    )
    month = models.DateField()
    rule = models.ForeignKey(CommissionRule, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=8, choices=StatementStatus.choices, default=StatementStatus.DRAFT
    )
    new_participants = models.PositiveIntegerField(default=0)
    qualifying = models.PositiveIntegerField(default=0)
    fee_total = models.BigIntegerField(default=0)
    incentive_total = models.BigIntegerField(default=0)
    clawback_total = models.BigIntegerField(default=0)  # zero or negative
    office_total = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    computed_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment_reference = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-month", "kind", "id"]
        indexes = [models.Index(fields=["month", "status"], name="commission_month_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "month"],
                condition=Q(kind="agent"),
                name="commission_agent_month_once",
            ),
            models.UniqueConstraint(
                fields=["office", "month"],
                condition=Q(kind="office"),
                name="commission_office_month_once",
            ),
            models.CheckConstraint(
                condition=(Q(kind="agent", agent__isnull=False, office__isnull=True))
                | Q(kind="office", office__isnull=False, agent__isnull=True),
                name="commission_statement_owner",
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="commission_month_first_day"),
            models.CheckConstraint(
                condition=Q(status="draft")
                | Q(approved_at__isnull=False, approved_by__isnull=False),
                name="commission_approved_by_whom",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False, paid_by__isnull=False),
                name="commission_paid_by_whom",
            ),
        ]

    def __str__(self) -> str:
        owner = f"agent {self.agent_id}" if self.kind == "agent" else f"office {self.office_id}"
        return f"{self.month:%Y-%m} {owner}: Rp {self.total:,} ({self.status})"


class CommissionLine(models.Model):
    """Why a statement pays (or takes back) an amount: one participant's acquisition fee, the
    incentive on one payment entry's months in one membership band, the clawback of an earlier
    incentive whose payment was reversed, or (office statements) the share of one agent's total.
    `note` says why (codes: services.NOTES)."""

    class Kind(models.TextChoices):
        FEE = "fee", _("Acquisition fee")
        INCENTIVE = "incentive", _("Contribution incentive")
        CLAWBACK = "clawback", _("Clawback of a reversed payment")
        OFFICE_SHARE = "office_share", _("Office share")

    statement = models.ForeignKey(
        CommissionStatement, on_delete=models.PROTECT, related_name="lines"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    participant = models.ForeignKey(
        "enrollment.Participant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the payment (incentive) or reversal (clawback) entry the line is for
    ledger_entry = models.ForeignKey(
        "contributions.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # office lines: whose statement the share is of
    source_statement = models.ForeignKey(
        CommissionStatement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    covered_from = models.DateField(null=True, blank=True)  # first contribution month
    months = models.PositiveSmallIntegerField(default=0)
    membership_from = models.PositiveSmallIntegerField(null=True, blank=True)
    membership_to = models.PositiveSmallIntegerField(null=True, blank=True)
    base = models.BigIntegerField(default=0)  # the contribution (or total) the rate applies to
    rate_bp = models.PositiveIntegerField(default=0)
    amount = models.BigIntegerField()
    note = models.CharField(max_length=20)

    class Meta:
        verbose_name = _("commission line")
        verbose_name_plural = _("commission lines")
        ordering = ["statement", "kind", "id"]
        indexes = [
            models.Index(fields=["statement", "kind"], name="commission_line_statement"),
            models.Index(
                fields=["ledger_entry"],
                condition=Q(kind="incentive"),
                name="commission_line_entry",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["participant", "id"], name="commission_line_pid_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} Rp {self.amount:,}"
