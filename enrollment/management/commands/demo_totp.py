"""`manage.py demo_totp USERNAME`: the current two-factor code of a demo login (make run).

Only for the demo's published TOTP key (enrollment/demo.py) and only with DEBUG on: a real
user's device is never read here."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from enrollment.demo import DEMO_TOTP_KEY


class Command(BaseCommand):
    help = "Print the current TOTP code (and otpauth URI) of a demo login; DEBUG only."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username", help="a demo login with a TOTP device (admin, jabar)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_totp works only with DEBUG on (the demo).")
        device = TOTPDevice.objects.filter(
            user__username=options["username"], key=DEMO_TOTP_KEY, confirmed=True
        ).first()
        if device is None:
            raise CommandError(
                f"{options['username']} has no demo TOTP device; run `manage.py seed_demo`."
            )
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"code: {code:0{device.digits}d}  (valid for up to {device.step} s)")
        self.stdout.write(f"otpauth URI: {device.config_url}")
