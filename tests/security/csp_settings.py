"""The browser tests' server settings behind a strict CSP (tests/security/csp.py)."""

from __future__ import annotations

from tests.widget.server_settings import *  # noqa: F403
from tests.widget.server_settings import MIDDLEWARE as _MIDDLEWARE

MIDDLEWARE = ["tests.security.csp.StrictCSPMiddleware", *_MIDDLEWARE]
