"""The demo commands refuse to run with DEBUG off: the demo logins' password and two-factor key
are published in the README, so a production database must never get them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from enrollment.models import Branch, Participant, Partner, StaffProfile


@pytest.mark.django_db
def test_seed_demo_with_debug_off_is_refused_and_writes_nothing(
    refdata: Any, settings: Any
) -> None:
    settings.DEBUG = False
    before = [m.objects.count() for m in (Branch, Partner, StaffProfile, Participant)]
    with pytest.raises(CommandError, match="DEBUG on"):
        call_command("seed_demo", "--workers", "2", stdout=io.StringIO())
    assert [m.objects.count() for m in (Branch, Partner, StaffProfile, Participant)] == before
    assert not get_user_model().objects.filter(username="admin").exists()
    assert not TOTPDevice.objects.exists()


@pytest.mark.django_db
def test_demo_totp_with_debug_off_is_refused(refdata: Any, settings: Any) -> None:
    from enrollment.demo import seed_demo

    seed_demo(participants_per_agent=0)  # the demo admin and its published key exist
    settings.DEBUG = False
    out = io.StringIO()
    with pytest.raises(CommandError, match="DEBUG on"):
        call_command("demo_totp", "admin", stdout=out)
    assert out.getvalue() == ""  # no code, no otpauth URI
