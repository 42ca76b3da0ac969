"""Test settings: DATABASE_URL picks PostgreSQL, TEST_CHANNEL_LAYER=redis the Redis layer."""

from __future__ import annotations

import os

import dj_database_url
import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
USE_TZ = True
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "sophie_chat",
    "tests.testapp",
    # The example marketplace (example_project/ is on pytest's pythonpath), for tests/example/.
    "marketplace",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
_db_url = os.environ.get("DATABASE_URL")
if _db_url:
    DATABASES = {"default": dj_database_url.parse(_db_url)}
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20}
    # Two checkouts on one machine (or CI beside a developer) must not share test_<name>.
    if os.environ.get("PG_TEST_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["PG_TEST_NAME"]}
else:
    # A file, not memory: the live-server (browser) tests share it with daphne's threads.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "sophie-test.sqlite3",
            "TEST": {"NAME": os.environ.get("SQLITE_TEST_NAME", "sophie-test.sqlite3")},
        }
    }
_redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
if os.environ.get("TEST_CHANNEL_LAYER") == "redis":
    from sophie_chat.layers import redis_channel_layer

    CHANNEL_LAYERS = {"default": redis_channel_layer(_redis_url, prefix="sophie-test")}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# GC_FREEZE off: the test process's collector is not the worker's (tests/test_gcfreeze.py
# turns it on where it is tested; the servers that tests start keep the default).
CHAT_CONFIG = {
    "OPENAI_API_KEY": "",
    "AI_BACKEND": "sophie_chat.ai.offline.OfflineBackend",
    "GC_FREEZE": False,
}
if django.VERSION >= (6, 1):
    # Django 6.1 wants mailers configured (the test runner swaps in the locmem backend).
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
