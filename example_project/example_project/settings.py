"""Settings of the example marketplace ("Contrata Já"), a demo site that installs Sophie.

Environment switches (all optional; with none of them the demo runs on SQLite, in memory):

- ``DEBUG``: ``1``/``0`` (default ``1``: it is a demo).
- ``DATABASE_URL``: a PostgreSQL URL, e.g. ``postgres://postgres@127.0.0.1:5432/sophie``.
- ``REDIS_URL``: e.g. ``redis://127.0.0.1:6379/0``; switches the channel layer and the cache.
- ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``: read by sophie_chat itself, never stored here.
- ``SECRET_KEY``: required when ``DEBUG`` is off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import structlog

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("Set SECRET_KEY when DEBUG is off.")
    SECRET_KEY = "example-project-demo-only-not-secret"

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "sophie_chat",
    "marketplace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "marketplace.middleware.NotFoundPageMiddleware",
]

ROOT_URLCONF = "example_project.urls"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database ---------------------------------------------------------------------------------
_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url)}
    # Django's psycopg pool: a chat turn must not pay a fresh connection (FACTS: +1.7 s p95).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {
                # WAL lets readers and the writer work at once; NORMAL is durable enough with WAL
                # and several times faster. IMMEDIATE takes the write lock up front, so two
                # concurrent transactions wait for each other instead of failing "database is
                # locked" halfway through.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and cache -------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    from sophie_chat.layers import redis_channel_layer

    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL, prefix="sophie-example")}
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "sophie-example",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "marketplace:home"
LOGOUT_REDIRECT_URL = "marketplace:home"
# Password-reset e-mails are printed by the server: the demo sends no mail.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "Contrata Já <nao-responda@example.com>"

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
# Run makemessages from example_project/: the project templates' strings then land in the app's
# catalogue, which Django also loads wherever "marketplace" is installed (the tests too).
LOCALE_PATHS = [BASE_DIR / "marketplace" / "locale"]
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Sophie -------------------------------------------------------------------------------------
CHAT_CONFIG: dict[str, Any] = {
    "ASSISTANT_NAME": "Sophie",
    "DEFAULT_LANGUAGE": "pt-br",
    "SUPPORT_CONTACT": {
        "email": "suporte@example.com",
        "phone": "+55 11 4000-0000",
        "whatsapp": "https://wa.me/5511400000000",
        "hours": "seg-sex 8h-18h",
        "url": "/como-funciona/#suporte",
    },
    "USER_TYPE_RESOLVER": "marketplace.chat.user_type",
    "USER_CONTEXT_PROVIDER": "marketplace.chat.user_context",
    "SERVICE_INFO_PROVIDER": "marketplace.chat.MarketplaceServices",
    # The accessibility button sits at the bottom right; the launcher goes above it.
    "WIDGET": {"position": "bottom-right", "offset_bottom": 88, "offset_side": 24},
}

# --- Logging: structlog is configured here, by the site, never by the library -------------------
_shared_processors: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
_renderer: Any = (
    structlog.dev.ConsoleRenderer(colors=False) if DEBUG else structlog.processors.JSONRenderer()
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structlog": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _renderer,
            ],
            "foreign_pre_chain": _shared_processors,
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "sophie_chat": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "marketplace": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_shared_processors,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
