"""Sphinx configuration of the django-sophie-chat documentation (built with ``-W``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_VERSION = re.search(
    r'^version = "([^"]+)"', (_ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE
)

project = "django-sophie-chat"
author = "django-sophie-chat contributors"
copyright = "django-sophie-chat contributors"
release = _VERSION.group(1) if _VERSION else "unknown"
version = release

extensions = ["sphinx.ext.intersphinx"]
intersphinx_mapping: dict[str, tuple[str, Any]] = {}  # offline builds: no inventories to fetch
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "django-sophie-chat"
language = "en"
pygments_style = "sphinx"


def setup(app: Any) -> None:
    # ``.. setting:: KEY`` blocks in configuration.rst, linkable with :setting:`KEY`.
    app.add_object_type(
        "setting", "setting", indextemplate="pair: %s; setting", objname="CHAT_CONFIG key"
    )
