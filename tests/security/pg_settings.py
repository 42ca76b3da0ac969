"""Settings of the abuse suite's server processes: the test settings (PostgreSQL from
``DATABASE_URL``, the Redis layer with ``TEST_CHANNEL_LAYER=redis``) with ``CHAT_CONFIG`` keys
merged from ``SOPHIE_SECURITY_CHAT_CONFIG`` (JSON)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import CHAT_CONFIG as _BASE_CHAT_CONFIG

CHAT_CONFIG = {
    **_BASE_CHAT_CONFIG,
    **json.loads(os.environ.get("SOPHIE_SECURITY_CHAT_CONFIG", "{}")),
}
