"""Create a REST API client and print its token once (only its hash is stored)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from enrollment.api.clients import PAYMENT_CHANNELS, create_api_client
from enrollment.api.signing import signing_secret
from enrollment.errors import RegistrationError
from enrollment.models import ApiClient, Partner, StaffProfile


class Command(BaseCommand):
    help = "Create an API client: create_api_client NAME --scope admin|partner|channel|agent"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="a unique name for the client (e.g. the partner app)")
        parser.add_argument(
            "--scope",
            required=True,
            choices=ApiClient.Scope.values,
            help="what the client may do (docs/api.md)",
        )
        parser.add_argument("--partner", help="partner code (partner scope)")
        parser.add_argument("--agent", help="the agent's username (agent scope)")
        parser.add_argument(
            "--channel",
            choices=PAYMENT_CHANNELS,
            default="",
            help="payment channel (channel scope)",
        )
        parser.add_argument(
            "--autodebit-url",
            default="",
            help="channel scope: the base URL of its autodebit charge API (docs/api.md)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["autodebit_url"] and options["scope"] != ApiClient.Scope.CHANNEL:
            raise CommandError("--autodebit-url is for a channel client (--scope channel)")
        partner = agent = None
        if options["partner"]:
            partner = Partner.objects.filter(code=options["partner"]).first()
            if partner is None:
                raise CommandError(f"no partner with code {options['partner']!r}")
        if options["agent"]:
            agent = StaffProfile.objects.filter(user__username=options["agent"]).first()
            if agent is None:
                raise CommandError(f"no staff user {options['agent']!r}")
        try:
            issued = create_api_client(
                name=options["name"],
                scope=options["scope"],
                partner=partner,
                agent=agent,
                payment_channel=options["channel"],
            )
        except RegistrationError as exc:
            raise CommandError("; ".join(f"{e.field}: {e.message}" for e in exc.errors)) from exc
        if options["autodebit_url"]:
            issued.client.autodebit_url = options["autodebit_url"]
            issued.client.save(update_fields=["autodebit_url"])
        self.stderr.write(
            f"API client {issued.client.name!r} ({issued.client.scope}) created; "
            "the token is shown once — store it now:"
        )
        self.stdout.write(issued.token)
        if issued.client.scope == ApiClient.Scope.CHANNEL:  # it signs bill payment notifications
            self.stdout.write(f"signing secret: {signing_secret(issued.client)}")
