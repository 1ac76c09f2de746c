#!/usr/bin/env python
"""Django's command-line utility for the BPU portal."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpjsportal.settings")
    from django.core.management import execute_from_command_line

    from bpjsportal.core.audit_context import command_context

    # Changes a command makes are audited as made by that command and OS user (docs/security.md).
    with command_context(sys.argv):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
