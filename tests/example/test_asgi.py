"""The example's asgi.py works as the installation docs say, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_asgi_application_builds_in_a_fresh_interpreter() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "example_project"),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DEBUG": "1",
    }
    code = "import example_project.asgi as a; print(type(a.application).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ProtocolTypeRouter"
