"""`manage.py demo_channel_client var/demo-channel.json [--autodebit-url URL]`: the demo's
payment channel client ("Demo Bank"), its token and signing secret written to a file the fake
channel reads (contributions/fake_channel.py); with --autodebit-url it also takes autodebit
mandates, charged at that URL. DEBUG only; kept while the client stays active."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from enrollment.api.clients import create_api_client
from enrollment.api.signing import signing_secret
from enrollment.models import ApiClient

NAME = "Demo Bank"


class Command(BaseCommand):
    help = "Create (or keep) the demo payment channel client and write its credentials (DEBUG)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", type=Path, help="the JSON file to write the credentials to (the fake channel's)"
        )
        parser.add_argument("--autodebit-url", default="", help="the fake channel's base URL")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_channel_client works only with DEBUG on (a demo client).")
        path: Path = options["path"]
        if path.is_file():
            try:
                kept = json.loads(path.read_text())
                client = ApiClient.objects.filter(
                    pk=int(kept["client_id"]), revoked_at__isnull=True
                ).first()
            except (ValueError, KeyError, TypeError):
                client = None
            if client is not None:
                client.autodebit_url = options["autodebit_url"]
                client.save(update_fields=["autodebit_url"])
                self.stdout.write(f"demo channel client {client.pk} kept ({path})")
                return
        issued = create_api_client(name=NAME, scope="channel", payment_channel="bank")
        issued.client.autodebit_url = options["autodebit_url"]
        issued.client.save(update_fields=["autodebit_url"])
        data = {
            "client_id": issued.client.pk,
            "token": issued.token,
            "secret": signing_secret(issued.client),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        self.stdout.write(f"demo channel client {issued.client.pk} created ({path})")
