from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = _("Reporting")

    def ready(self) -> None:
        from enrollment.management.commands.load_reference_data import reference_data_loading
        from enrollment.management.commands.seed_demo import demo_seeding

        from . import cache, demo, targets

        reference_data_loading.connect(targets.on_reference_data_loading, weak=False)
        demo_seeding.connect(demo.on_demo_seeding, weak=False)
        cache.connect_signals()
