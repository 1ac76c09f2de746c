"""The main pages run in a real browser under the Content-Security-Policy with no violation:
no inline script or style is blocked (so none is used), htmx and the charts still work."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contributions.models import Coverage
from contributions.quotes import quote_payment
from contributions.services import record_payment
from enrollment.services import register_participant
from reporting.rollups import rebuild_rollups
from tests.conftest import login, nik_for, registration_data

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("tx_refdata")]

# Recorded in the page before any of its own scripts run.
WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile);
});
"""


def _watch(page: Any) -> list[str]:
    messages: list[str] = []
    page.add_init_script(WATCH)
    page.on(
        "console",
        lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return messages


def _visit(page: Any, url: str, messages: list[str]) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    found = page.evaluate("window.__cspViolations") + messages
    assert not found, (url, found)


def test_main_pages_have_no_csp_violation(page: Any, live_server: Any, admin_user: Any) -> None:
    from enrollment.models import StaffProfile

    p = register_participant(**registration_data(nik=nik_for(serial=71)))
    cov = Coverage.objects.get(pk=p.pk)
    due = quote_payment(p, cov, months=1, as_of=timezone.localdate())
    payment, _ = record_payment(
        participant=p,
        amount=due.amount,
        months=1,
        payer="participant",
        channel="bank",
        reference="CSP-1",
        paid_at=timezone.now(),
    )
    rebuild_rollups(start=timezone.localdate(), end=timezone.localdate())
    assert StaffProfile.objects.filter(user=admin_user).exists()
    messages = _watch(page)
    _visit(page, f"{live_server.url}/login/", messages)
    login(page, live_server, admin_user.username)  # includes the TOTP page
    base = live_server.url
    for path in (
        "/",
        f"/participants/{p.pk}/",
        f"/participants/{p.pk}/ledger/",
        f"/participants/{p.pk}/card/",
        f"/participants/{p.pk}/payments/cash/",
        f"/payments/{payment.pk}/receipt/",
        "/arrears/",
        "/reminders/today/",
        "/reports/",
        f"/reports/targets/{timezone.localdate().year}/",
        "/login/otp/setup/",
        "/field/",  # the field app's shell, modules and service worker (an admin: its login screen)
        "/api/docs/",  # last: Swagger UI is checked below
    ):
        _visit(page, base + path, messages)
    page.wait_for_selector(".swagger-ui")  # Swagger UI rendered from its separate script
    # The registration form: htmx posts the NIK check under the policy.
    _visit(page, base + "/register/", messages)
    page.fill("#id_nik", "1234")
    page.dispatch_event("#id_nik", "change")
    page.wait_for_selector("[data-testid=nik-check]")
    found = page.evaluate("window.__cspViolations") + messages
    assert not found, found
