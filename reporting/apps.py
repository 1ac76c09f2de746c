from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = _("Reporting")

    def ready(self) -> None:
        from enrollment.management.commands.load_reference_data import reference_data_loading

        from . import cache, demo, targets

        reference_data_loading.connect(targets.on_reference_data_loading, weak=False)
        demo.register_demo_steps()  # the demo's ordered steps (enrollment/demo.py)
        cache.connect_signals()
