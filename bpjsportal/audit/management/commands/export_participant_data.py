"""Export everything held about one participant as JSON (a data-subject request, UU PDP).

    manage.py export_participant_data --kpj 10000000012 --by admin [--reason "DSR-2026-001"]
    manage.py export_participant_data --nik 3273051705900001 --by admin --output subject.json

`--by` names the administrator the request is handled by (must be a superuser or have the admin
role); the export is recorded in the participant's audit history with that user, the command and
the operating-system user. The JSON goes to stdout or `--output` (created with mode 0600).
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpjsportal.audit.subject_access import (
    ExportError,
    export_participant_data,
    find_participant,
)
from bpjsportal.core.audit_context import labelled


class Command(BaseCommand):
    help = "Export everything held about one participant as JSON (data-subject request)."

    def add_arguments(self, parser: CommandParser) -> None:
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument("--kpj", help="the participant's KPJ number")
        key.add_argument("--nik", help="the participant's NIK")
        parser.add_argument("--by", required=True, help="username of the administrator")
        parser.add_argument("--reason", default="", help="request reference or reason")
        parser.add_argument("--output", help="write the JSON to this file instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["by"]).first()
        if user is None:
            raise CommandError(f"No user named {options['by']!r}.")
        with labelled(command="export_participant_data"):
            try:
                participant = find_participant(kpj=options["kpj"], nik=options["nik"])
                export = export_participant_data(
                    participant, user=user, reason=options["reason"], via="command"
                )
            except ExportError as exc:
                raise CommandError(exc.message) from exc
        text = export.as_json()
        if options["output"]:
            fd = os.open(options["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            self.stderr.write(f"Written to {options['output']}.")
        else:
            self.stdout.write(text)
