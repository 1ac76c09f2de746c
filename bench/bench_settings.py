"""Benchmark-only settings: the app's settings plus bench/bare_urls.py (never shipped)."""

from bpjsportal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"

# The bench worker also loads the benchmark-only tasks (bench/tasks.py: the no-op baseline).
CELERY_IMPORTS = ["bench.tasks"]
