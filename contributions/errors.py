"""Domain errors of contributions. Each carries a machine-readable `code` and a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise


class ContributionError(Exception):
    def __init__(self, code: str, message: str | Promise, **details: Any) -> None:
        self.code = code
        self.message = message
        self.details = details
        super().__init__(f"{code}: {message}")


class PaymentError(ContributionError):
    """A payment was refused; nothing was written. `details["expected"]` on amount_mismatch."""

    @property
    def expected(self) -> int | None:
        value = self.details.get("expected")
        return int(value) if value is not None else None


class PaymentConflict(PaymentError):
    """The channel's reference is already used by a payment with different content."""


class ReversalError(ContributionError):
    pass


class ConsentError(ContributionError):
    """A sponsor consent that cannot be recorded (contributions/sponsorship.py)."""


@dataclass(frozen=True)
class RowError:
    row: int
    key: str
    code: str
    message: str


@dataclass
class BatchError(Exception):
    """A sponsor batch was refused as a whole; `rows` lists every bad row. Nothing was posted."""

    code: str
    message: str
    rows: list[RowError] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.message} ({len(self.rows)} bad rows)"


class ImportFileError(ContributionError):
    """The reconciliation file cannot be read (header, encoding); nothing was posted."""
