from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContributionsConfig(AppConfig):
    name = "contributions"
    verbose_name = _("Contributions")

    def ready(self) -> None:
        from enrollment import hooks
        from enrollment.management.commands.load_reference_data import reference_data_loading

        from . import rates

        hooks.register_income_check(rates.check_declared_income)
        hooks.register_income_levels(rates.income_levels_or_empty)
        hooks.register_participant_panel(rates.monthly_contribution_panel)
        reference_data_loading.connect(rates.on_reference_data_loading, weak=False)
