"""Domain errors of enrollment. Each carries machine-readable codes and per-field messages."""

from __future__ import annotations

from django.utils.functional import Promise

from bpjsportal.core.api.errors import FieldError


class RegistrationError(Exception):
    """One or more rules broken; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.code}" for e in errors))

    @property
    def code(self) -> str:
        return self.errors[0].code

    def codes(self) -> list[str]:
        return [e.code for e in self.errors]

    def by_field(self) -> dict[str, list[FieldError]]:
        out: dict[str, list[FieldError]] = {}
        for e in self.errors:
            out.setdefault(e.field, []).append(e)
        return out


class DuplicateNik(RegistrationError):
    """The NIK is already registered; names who to contact."""

    def __init__(self, nik: str, message: str | Promise, existing_id: int | None = None) -> None:
        self.nik = nik
        self.existing_id = existing_id
        super().__init__([FieldError("nik", "duplicate_nik", message)])
