"""WSGI entry point (gunicorn bpjsportal.wsgi in production)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
application = get_wsgi_application()
