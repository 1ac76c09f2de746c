"""Contribution tables: versioned rate schedules, income levels and temporary discounts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


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
    source = models.TextField()

    class Meta:
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
