"""Production processes refuse to start on development secrets.

With DEBUG off, the web process (bpjsportal/wsgi.py: gunicorn, and runserver) and the Celery
worker and beat (bpjsportal/celery.py) run the security checks of `manage.py check --deploy`
before they serve anything, and stop on any error: a published development key (NIK keys,
KPJ key, the reminder gateway's key and callback secret; SECRET_KEY is refused by the settings
themselves) or a malformed one. `check --deploy` itself reports the same errors one by one.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def refuse_unsafe_production() -> None:
    """Raise ImproperlyConfigured, naming each problem, when DEBUG is off and `check --deploy`
    finds a security error. Needs the app registry ready (the checks are registered there)."""
    if settings.DEBUG:
        return
    errors = [
        message
        for message in checks.run_checks(
            tags=[checks.Tags.security], include_deployment_checks=True
        )
        if message.is_serious() and not message.is_silenced()
    ]
    if errors:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off (`manage.py check --deploy` lists the same):\n"
            + "\n".join(f"  {error}" for error in errors)
        )
