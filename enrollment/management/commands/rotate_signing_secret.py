"""Rotate a payment channel client's signing secret (docs/operations.md, "Channel signing")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from enrollment.api.signing import rotate_signing_secret
from enrollment.models import ApiClient


class Command(BaseCommand):
    help = (
        "Give a channel API client a new signing secret; the previous one keeps verifying for "
        "--overlap-hours (default 24) while the channel switches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the API client's name")
        parser.add_argument(
            "--overlap-hours",
            type=int,
            default=24,
            help="hours the previous secret keeps verifying (0-720, default 24)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["overlap_hours"] <= 24 * 30:
            raise CommandError("--overlap-hours must be between 0 and 720")
        clients = list(ApiClient.objects.filter(name=options["name"], active=True)[:2])
        if len(clients) != 1:
            raise CommandError(f"no single active API client named {options['name']!r}")
        client = clients[0]
        if client.scope != ApiClient.Scope.CHANNEL:
            raise CommandError("only channel clients sign their requests")
        secret = rotate_signing_secret(client, overlap=timedelta(hours=options["overlap_hours"]))
        self.stderr.write(
            f"API client {client.name!r}: new signing secret (shown once); the previous one "
            f"verifies until {client.signing_previous_until:%Y-%m-%d %H:%M %Z}:"
        )
        self.stdout.write(f"signing secret: {secret}")
