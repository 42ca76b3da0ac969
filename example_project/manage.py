#!/usr/bin/env python
"""Run the example marketplace's management commands: ``python example_project/manage.py ...``."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # The demo is run from the repository root; its own folder holds the project and the app.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
