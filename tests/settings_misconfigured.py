"""Settings with one of each mistake the system checks catch; for the ``check --deploy`` demo.

    PYTHONPATH=.:src python -m django check --deploy --settings=tests.settings_misconfigured

Not used by the test suite (tests/test_checks.py overrides settings per check). Left out, as they
exclude others shown here: E001 (CHAT_CONFIG not a dict), E010 (no ``channels`` app), E014 (a bad
ALLOWED_ORIGINS entry, while E012 needs none) and W001 (an in-memory default layer); E015 needs an
openai SDK installed without aiohttp.
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403

# The example marketplace needs example_project/ on the path; the demo does without it.
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "marketplace"]  # noqa: F405
ALLOWED_HOSTS = ["*"]  # sophie_chat.E012, as ALLOWED_ORIGINS is not set
del ASGI_APPLICATION  # noqa: F821  sophie_chat.E011
CHANNEL_LAYERS = {  # sophie_chat.E013: no "default"; W010: channels-redis under its own defaults
    "chat": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/15"]},
    },
}
CHAT_CONFIG = {
    "OPENAI_MODLE": "gpt-4o-mini",  # sophie_chat.E002: did you mean OPENAI_MODEL?
    "OPENAI_TIMEOUT": "20",  # sophie_chat.E003: a string, not seconds
    "RATE_LIMIT": "10 per minute",  # sophie_chat.E004
    "TEMPERATURE": 3,  # sophie_chat.E005
    "HISTORY_PAGE_SIZE": 50,  # sophie_chat.E006, with MAX_HISTORY_PAGE_SIZE 20
    "MAX_HISTORY_PAGE_SIZE": 20,
    "AI_BACKEND": "sophie_chat.ai.no_such_backend.Backend",  # sophie_chat.E007
    "WIDGET": {"primary_colour": "#000000"},  # sophie_chat.E008
    "REDIS_URL": "localhost:6379",  # sophie_chat.E009: no scheme
    "OPENAI_API_KEY": "sk-written-into-settings",  # sophie_chat.W002
    "MAX_MESSAGE_LENGTH": 8000,  # sophie_chat.W003 with the default MAX_FRAME_BYTES
    "OPENAI_HTTP_CLIENT": "requests",  # sophie_chat.E005: "auto", "aiohttp" or "httpx"
}
