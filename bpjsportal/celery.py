"""The Celery application: Redis broker, tasks discovered from the installed apps."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")

app = Celery("bpjsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's worker replaces the root logger's handlers with its own: mask personal data in those
# too (bpjsportal/core/logging.py).
from celery.signals import after_setup_logger, after_setup_task_logger  # noqa: E402

from bpjsportal.core.logging import install_on_celery_loggers  # noqa: E402

after_setup_logger.connect(install_on_celery_loggers, weak=False)
after_setup_task_logger.connect(install_on_celery_loggers, weak=False)

# A task queued during a request carries its request id into the worker's log lines.
from bpjsportal.core.request_id import connect_celery_signals  # noqa: E402

connect_celery_signals()

# With DEBUG off, a worker or beat does not start while a development secret is configured
# (bpjsportal/startup.py): the worker sends messages with the gateway key, encrypts NIKs, ...
import django  # noqa: E402
from celery.signals import beat_init, worker_init  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from bpjsportal.startup import refuse_unsafe_production  # noqa: E402


def _refuse_unsafe_production(**_kwargs: object) -> None:
    django.setup()  # idempotent; Celery's Django fixup may not have run it yet
    try:
        refuse_unsafe_production()
    except ImproperlyConfigured as exc:
        # Celery logs an exception from a signal handler and carries on: leave the process,
        # saying why on the real stderr (beat has redirected sys.stderr to a logger by now).
        print(exc, file=sys.__stderr__, flush=True)
        raise SystemExit(1) from exc


worker_init.connect(_refuse_unsafe_production, weak=False)
beat_init.connect(_refuse_unsafe_production, weak=False)
