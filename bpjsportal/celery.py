"""The Celery application: Redis broker, tasks discovered from the installed apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")

app = Celery("bpjsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
