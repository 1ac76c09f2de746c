"""gunicorn's settings for the portal's web process (docs/operations.md, "Processes").

`gunicorn -c gunicorn.conf.py` (the Procfile, deploy/systemd/bpjsportal-web.service) serves
`bpjsportal.wsgi`; gunicorn started in the project's directory reads this file by itself. Every
value comes from the environment, with a production default:

- HOST (127.0.0.1: behind the TLS proxy on the same host; 0.0.0.0 for a load balancer on another
  host) and PORT (8000): the address gunicorn listens on;
- WEB_CONCURRENCY: worker processes (2 x cores + 1); each holds its own database connection;
- WEB_TIMEOUT (60 s): a worker silent for longer is killed and replaced (a stuck request);
- FORWARDED_ALLOW_IPS (127.0.0.1,::1): the proxies whose X-Forwarded-* headers gunicorn trusts;
- LOG_LEVEL (INFO) and LOG_FORMAT (json unless DEBUG=1, as the settings): gunicorn's own lines
  and the access log (one line per request on stdout) in the portal's log format, with the
  request's id and through the personal-data mask (bpjsportal/core/logging.py);
- GUNICORN_CONTROL_SOCKET: the path of gunicorn's control socket (`gunicornc`); unset: none.

The command line (`-w 4`, `-b ...`) and GUNICORN_CMD_ARGS override this file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Mapping
from typing import Any

from environs import Env

from bpjsportal.core.logging import TEXT_FORMAT

_env = Env(expand_vars=False)


def _number(name: str, default: int) -> int:
    """A whole number from the environment; unset or empty: the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{name}={value!r} must be 1 or more")
    return number


def _host(value: str) -> str:
    return f"[{value}]" if ":" in value and not value.startswith("[") else value


wsgi_app = "bpjsportal.wsgi"
bind = [f"{_host(os.environ.get('HOST') or '127.0.0.1')}:{os.environ.get('PORT') or '8000'}"]
workers = _number("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
timeout = _number("WEB_TIMEOUT", 60)
# SIGTERM (systemd stop, a deploy): the workers finish the requests in flight for up to 30 s
graceful_timeout = 30
keepalive = 5  # behind the proxy, which keeps its connections to gunicorn open
# Each worker is replaced after about 1,000 requests (a slow leak never grows for long); the
# jitter keeps the workers from restarting all at once.
max_requests = 1000
max_requests_jitter = 100
# Every worker imports the application itself: a new worker (max_requests, HUP) loads the code
# on disk, and no connection opened while importing is shared across a fork.
preload_app = False
# The workers' heartbeat files in memory: a slow or full disk never makes them look stuck.
_SHM = "/dev/shm"  # noqa: S108 - a directory of the system, not a temporary file name
worker_tmp_dir = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
proc_name = "bpjsportal-web"
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control_socket:
    control_socket = _control_socket
else:  # the default, ~/.gunicorn/gunicorn.ctl, is one path for every gunicorn of the user
    control_socket_disable = True

# --- logs --------------------------------------------------------------------------------------
_DEBUG = _env.bool("DEBUG", False) if os.environ.get("DEBUG", "") else False
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("text" if _DEBUG else "json")
loglevel = (os.environ.get("LOG_LEVEL") or "INFO").lower()
accesslog = "-"
errorlog = "-"
# client (the proxy), the address the proxy saw, request line, status, bytes, time, referer, agent
access_log_format = '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'


class AccessRequestId(logging.Filter):
    """An access log line carries the id its response returned (X-Request-ID, set by
    bpjsportal.core.request_id's middleware): the request is over when gunicorn logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if isinstance(atoms, Mapping) and not hasattr(record, "request_id"):
            record.request_id = atoms.get("{x-request-id}o") or "-"
        return True


_FILTERS = ["mask_personal_data", "request_context"]
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "access_request_id": {"()": AccessRequestId},
        "mask_personal_data": {"()": "bpjsportal.core.logging.MaskPersonalDataFilter"},
        "request_context": {"()": "bpjsportal.core.request_id.RequestContextFilter"},
    },
    "formatters": {
        "text": {"format": TEXT_FORMAT},
        "json": {"()": "bpjsportal.core.logging.JsonFormatter"},
    },
    "handlers": {
        # as settings.LOGGING: stderr
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": _FILTERS},
        "access": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "stream": "ext://sys.stdout",
            "filters": ["access_request_id", *_FILTERS],
        },
    },
    "root": {"handlers": ["console"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its metrics files stop counting as live (bpjsportal/core/metrics.py,
    PROMETHEUS_MULTIPROC_DIR)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
