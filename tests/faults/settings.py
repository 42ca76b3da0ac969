"""Settings of the fault suites' server subprocess: the test settings (``DATABASE_URL``,
``TEST_CHANNEL_LAYER=redis``, ``TEST_REDIS_URL``) plus ``SOPHIE_FAULTS_CHAT_CONFIG`` (JSON),
merged over the test ``CHAT_CONFIG``."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import CHAT_CONFIG as _BASE_CHAT_CONFIG

CHAT_CONFIG = {**_BASE_CHAT_CONFIG, **json.loads(os.environ.get("SOPHIE_FAULTS_CHAT_CONFIG", "{}"))}
