from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnrollmentConfig(AppConfig):
    name = "enrollment"
    verbose_name = _("Enrollment")

    def ready(self) -> None:
        from django.contrib.auth.models import User
        from django.db.models.signals import post_save, pre_save

        from . import checks  # noqa: F401 - registers the NIK and KPJ key checks
        from .api import clients
        from .models import StaffProfile

        # A deactivated agent, a changed role or a reset password stops the agent's API tokens.
        pre_save.connect(clients.user_changing, sender=User, weak=False)
        post_save.connect(clients.user_changed, sender=User, weak=False)
        pre_save.connect(clients.staff_changing, sender=StaffProfile, weak=False)
        post_save.connect(clients.staff_changed, sender=StaffProfile, weak=False)
