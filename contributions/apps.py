from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


def allow_test_database_flush(sender: Any, connection: Any, **_kwargs: Any) -> None:
    """Let the test runner flush (TRUNCATE) the append-only ledger of the *test* database only.

    The ledger's TRUNCATE trigger (migration 0003) lets a TRUNCATE through only in a session with
    `bpu.ledger_truncate = 'allow'`. That is set here solely when the connection is to the
    database named in DATABASES[...]["TEST"]["NAME"] (Django points NAME at it during tests);
    production, demo and benchmark databases never match, so their ledgers stay untruncatable.
    """
    if connection.vendor != "postgresql":
        return
    settings_dict = connection.settings_dict
    test_name = (settings_dict.get("TEST") or {}).get("NAME")
    if test_name and settings_dict.get("NAME") == test_name:
        with connection.cursor() as cursor:
            cursor.execute("SET bpu.ledger_truncate = 'allow'")


class ContributionsConfig(AppConfig):
    name = "contributions"
    verbose_name = _("Contributions")

    def ready(self) -> None:
        from enrollment import hooks
        from enrollment.api import scopes as api_scopes
        from enrollment.management.commands.load_reference_data import reference_data_loading

        from . import demo, due_dates, panels, rates, selectors, services, signals, sponsorship
        from .checks import register as register_checks
        from .commissions import models as commission_models  # noqa: F401 - its tables
        from .commissions import rules_data as commission_rules
        from .follow_up import models as follow_up_models  # noqa: F401 - its table
        from .messaging import notifications, reminders
        from .models import Holiday, IncomeLevel, RateDiscount, RateSchedule

        register_checks()
        hooks.register_income_check(rates.check_declared_income)
        hooks.register_income_levels(rates.income_levels_or_empty)
        hooks.register_participant_panel(panels.participant_panel)
        hooks.register_after_registration(services.open_coverage, services.open_coverages)
        hooks.register_after_registration(
            notifications.welcome_after_registration,
            notifications.welcome_after_registration_bulk,
        )
        signals.payment_recorded.connect(
            notifications.payment_received, dispatch_uid="contributions-payment-receipt"
        )
        api_scopes.register_partner_filter(sponsorship.partner_scope)
        api_scopes.register_participant_decorator(selectors.with_coverage_status)
        reference_data_loading.connect(rates.on_reference_data_loading, weak=False)
        reference_data_loading.connect(due_dates.on_reference_data_loading, weak=False)
        reference_data_loading.connect(reminders.on_reference_data_loading, weak=False)
        reference_data_loading.connect(commission_rules.on_reference_data_loading, weak=False)
        demo.register_demo_steps()  # the demo's ordered steps (enrollment/demo.py)
        connection_created.connect(allow_test_database_flush, weak=False)
        for model in (RateSchedule, IncomeLevel, RateDiscount):
            post_save.connect(rates.clear_rate_book, sender=model, weak=False)
            post_delete.connect(rates.clear_rate_book, sender=model, weak=False)
        post_save.connect(due_dates.clear_calendar, sender=Holiday, weak=False)
        post_delete.connect(due_dates.clear_calendar, sender=Holiday, weak=False)
