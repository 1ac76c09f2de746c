"""The Celery application: Redis broker, tasks discovered from the installed apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")

app = Celery("bpjsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's worker replaces the root logger's handlers with its own: mask personal data in those
# too (bpjsportal/logging.py).
from celery.signals import after_setup_logger, after_setup_task_logger  # noqa: E402

from bpjsportal.logging import install_on_celery_loggers  # noqa: E402

after_setup_logger.connect(install_on_celery_loggers, weak=False)
after_setup_task_logger.connect(install_on_celery_loggers, weak=False)
