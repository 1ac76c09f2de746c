"""Channel reconciliation files: read a CSV of payments, post the matched rows idempotently and
report what happened to every row. Format: docs/contributions.md ("Reconciliation files").

The file is read twice, streaming, never held in memory: pass 1 checks the encoding (UTF-8,
optional BOM) and the header and takes the SHA-256; pass 2 posts the rows in chunks through
record_payment (the one write path), so a re-imported file changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bpjsportal.core.progress import Progress
from enrollment import pii
from enrollment.models import Participant, PayerType

from .errors import ImportFileError, PaymentConflict, PaymentError
from .models import RECEIVING_CHANNELS, ImportReport, Payment
from .services import record_payment

HEADER = ("reference", "kpj", "nik", "amount", "months", "paid_at")
# An optional last column: whose money each row is (enrollment.PayerType; blank = self).
OPTIONAL = ("payer_type",)
CHUNK = 1000
MAX_PROBLEMS = 200


@dataclass
class Tally:
    rows: int = 0
    matched: int = 0
    duplicate: int = 0
    unmatched: int = 0
    amount_mismatch: int = 0
    rejected: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, line: int, reference: str, code: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(
                {"line": line, "reference": reference, "code": code, "message": message}
            )


def check_file(
    raw: IO[bytes], header: tuple[str, ...] = HEADER, optional: tuple[str, ...] = ()
) -> str:
    """Pass 1: every line UTF-8, the header exactly `header` (or `header` + `optional`);
    returns the SHA-256. Raises ImportFileError (bad_encoding, empty_file, wrong_header)."""
    digest = hashlib.sha256()
    first = b""
    for n, line in enumerate(raw, start=1):
        digest.update(line)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                "bad_encoding",
                _("Line %(n)s is not UTF-8 text. Save the file as “CSV UTF-8” and try again.")
                % {"n": n},
            ) from exc
        if n == 1:
            first = line
    if not first.strip():
        raise ImportFileError("empty_file", _("The file is empty."))
    found = next(csv.reader([first.decode("utf-8").lstrip("\ufeff")]))
    if tuple(h.strip().lower() for h in found) not in (header, header + optional):
        raise ImportFileError(
            "wrong_header",
            _("The first line must be exactly: %(expected)s (found: %(found)s).")
            % {"expected": ",".join(header), "found": ",".join(found)[:200]},
        )
    return digest.hexdigest()


def parse_paid_at(value: str) -> datetime:
    value = value.strip()
    if len(value) == 10:
        moment = datetime.combine(date.fromisoformat(value), time(0, 0))  # never "future" today
    else:
        moment = datetime.fromisoformat(value)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@dataclass
class Row:
    line: int
    reference: str
    kpj: str
    nik: str
    amount: str
    months: str
    paid_at: str
    payer_type: str = ""


def csv_lines(raw: IO[bytes], width: int) -> Iterator[tuple[int, list[str]]]:
    """Pass 2: (line number, `width` stripped values) for each non-blank row after the header."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        next(reader)
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            values = (values + [""] * width)[:width]
            yield reader.line_num, [v.strip() for v in values]
    finally:
        text.detach()  # the caller owns the binary file


def _rows(raw: IO[bytes]) -> Iterator[Row]:
    for line, values in csv_lines(raw, len(HEADER) + len(OPTIONAL)):
        yield Row(line, *values)


def _post_chunk(chunk: list[Row], channel: str, tally: Tally, user: User | None) -> None:
    kpjs = {r.kpj for r in chunk if r.kpj}
    niks = {r.nik for r in chunk if r.nik and not r.kpj}
    people = Participant.objects.select_related("occupation")
    by_kpj = {p.kpj_number: p for p in people.filter(kpj_number__in=kpjs)}
    digests = pii.lookup_digests_many(niks)
    by_nik = {digests[bytes(p.nik_digest)]: p for p in people.filter(nik_digest__in=list(digests))}
    for row in chunk:
        participant = by_kpj.get(row.kpj) if row.kpj else by_nik.get(row.nik)
        if participant is None:
            tally.unmatched += 1
            tally.problem(
                row.line,
                row.reference,
                "participant_unknown",
                _("No participant has KPJ %(kpj)s / NIK %(nik)s.")
                % {"kpj": row.kpj or "-", "nik": row.nik or "-"},
            )
            continue
        try:
            amount, months = int(row.amount), int(row.months)
            paid_at = parse_paid_at(row.paid_at)
        except ValueError:
            tally.rejected += 1
            tally.problem(
                row.line,
                row.reference,
                "row_invalid",
                _("Amount and months must be whole numbers and paid_at an ISO date."),
            )
            continue
        try:
            _payment, created = record_payment(
                participant=participant,
                amount=amount,
                months=months,
                payer=Payment.Payer.PARTICIPANT,
                channel=channel,
                reference=row.reference,
                paid_at=paid_at,
                user=user,
                notify=False,  # a bank file: the next day's payment_thanks thanks them
                payer_type=row.payer_type.lower() or PayerType.SELF,
            )
        except PaymentConflict as exc:
            tally.rejected += 1
            tally.problem(row.line, row.reference, exc.code, str(exc.message))
        except PaymentError as exc:
            if exc.code == "amount_mismatch":
                tally.amount_mismatch += 1
            else:
                tally.rejected += 1
            tally.problem(row.line, row.reference, exc.code, str(exc.message))
        else:
            if created:
                tally.matched += 1
            else:
                tally.duplicate += 1


def count_rows(raw: IO[bytes]) -> int:
    """The file's data rows (for a progress total); leaves the file at its start."""
    raw.seek(0)
    total = sum(1 for _row in _rows(raw))
    raw.seek(0)
    return total


def import_payments(
    raw: IO[bytes],
    *,
    channel: str,
    filename: str,
    user: User | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one reconciliation file; returns the saved ImportReport.

    Raises ImportFileError (bad_encoding, wrong_header, empty_file, channel_invalid) before
    anything is posted. Each matched row is its own transaction (record_payment), so an
    interrupted import is resumed by importing the same file again.

    `dry_run`: every chunk of rows is posted exactly as it would be, inside a transaction that
    is then rolled back (its locks last one chunk, never the whole file); the report (not saved)
    says what the import would do. Rows of one participant in two different chunks are each
    judged against the ledger as it is, without the other.
    """
    if channel not in RECEIVING_CHANNELS:
        raise ImportFileError("channel_invalid", _("Unknown payment channel."))
    sha = check_file(raw, HEADER, OPTIONAL)
    raw.seek(0)
    tally = Tally()

    def post(chunk: list[Row]) -> None:
        if dry_run:
            with transaction.atomic():
                _post_chunk(chunk, channel, tally, user)
                transaction.set_rollback(True)
        else:
            _post_chunk(chunk, channel, tally, user)
        if progress is not None:
            progress.advance(len(chunk))

    chunk: list[Row] = []
    for row in _rows(raw):
        tally.rows += 1
        chunk.append(row)
        if len(chunk) >= CHUNK:
            post(chunk)
            chunk = []
    if chunk:
        post(chunk)
    report = ImportReport(
        channel=channel,
        filename=filename[:255],
        sha256=sha,
        rows=tally.rows,
        matched=tally.matched,
        duplicate=tally.duplicate,
        unmatched=tally.unmatched,
        amount_mismatch=tally.amount_mismatch,
        rejected=tally.rejected,
        problems=tally.problems,
        created_by=user,
    )
    if not dry_run:
        report.save()
    return report
