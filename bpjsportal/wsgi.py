"""WSGI entry point (gunicorn bpjsportal.wsgi in production)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
application = get_wsgi_application()

# With DEBUG off, no request is served while a development secret is configured.
from bpjsportal.startup import refuse_unsafe_production  # noqa: E402 - needs the apps loaded

refuse_unsafe_production()
