"""One test per system check id; docs/checks.rst and the code list the same ids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Tags, run_checks
from django.test import modify_settings, override_settings

from sophie_chat import checks
from sophie_chat.checks.config import NONE_DEFAULT_TYPES, parse_rate
from sophie_chat.conf import SophieChatAppConf
from sophie_chat.layers import redis_channel_layer

ROOT = Path(__file__).resolve().parent.parent
ID_RE = re.compile(r"sophie_chat\.[EWI]\d{3}")


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def config_errors(**chat_config: Any) -> list[Any]:
    with override_settings(CHAT_CONFIG=chat_config):
        return checks.check_chat_config()


def test_defaults_pass_every_check() -> None:
    with override_settings(CHAT_CONFIG=dict(SophieChatAppConf.DEFAULTS)):
        assert config_errors(**SophieChatAppConf.DEFAULTS) == []
        assert checks.check_redis_url() == []


def test_every_none_default_has_a_declared_type() -> None:
    # A key defaulting to None has no default to take its type from: declare it in the table.
    none_keys = {key for key, value in SophieChatAppConf.DEFAULTS.items() if value is None}
    assert none_keys == set(NONE_DEFAULT_TYPES)


def test_e001_chat_config_not_a_dict() -> None:
    with override_settings(CHAT_CONFIG=[("OPENAI_MODEL", "x")]):
        errors = checks.check_chat_config()
        assert ids(errors) == ["sophie_chat.E001"]
        assert "list" in errors[0].msg
        assert checks.check_redis_url() == []  # no crash, no duplicate


def test_e002_unknown_key_suggests_the_closest() -> None:
    errors = config_errors(OPENAI_MODLE="gpt-4o")
    assert ids(errors) == ["sophie_chat.E002"]
    assert errors[0].hint == "Did you mean 'OPENAI_MODEL'?"
    with override_settings(CHAT_CONFIG={"COMPLETELY_ELSE": 1}):
        found = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "sophie_chat.E002"]
    assert len(found) == 1
    assert "Known keys:" in str(found[0].hint)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OPENAI_TIMEOUT", "20"),
        ("ALLOW_ANONYMOUS", 1),
        ("MAX_TOKENS", True),
        ("MAX_TOKENS", 600.0),
        ("AI_BACKEND", 3),
        ("ALLOWED_ORIGINS", "https://example.com"),
        ("ALLOWED_ORIGINS", ["https://example.com", 3]),
        ("FRUSTRATION_WORDS", "absurdo"),
        ("WIDGET", "bottom-left"),
        ("SUPPORT_CONTACT", {"email": None}),
        ("WIDGET", {"z_index": "999"}),
        ("RATE_LIMIT", 10),
    ],
)
def test_e003_wrong_type(key: str, value: Any) -> None:
    errors = config_errors(**{key: value})
    assert ids(errors) == ["sophie_chat.E003"]
    assert key in errors[0].msg
    assert "docs/configuration.rst" in str(errors[0].hint)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OPENAI_TIMEOUT", 20),  # an int where a float is expected
        ("OPENAI_API_KEY", None),
        ("ALLOWED_ORIGINS", ("https://example.com",)),
        ("WIDGET", {"z_index": 2000}),
    ],
)
def test_e003_accepts_compatible_types(key: str, value: Any) -> None:
    assert config_errors(**{key: value}) == []


@pytest.mark.parametrize("rate", ["10/min", "0/m", "-1/m", "ten/m", "", "10", "10/w"])
def test_e004_unparsable_rate_limit(rate: str) -> None:
    errors = config_errors(RATE_LIMIT=rate)
    assert ids(errors) == ["sophie_chat.E004"]
    assert '"10/m"' in str(errors[0].hint)


def test_parse_rate() -> None:
    assert parse_rate("10/m") == (10, 60)
    assert parse_rate(" 5 / s ") == (5, 1)
    assert parse_rate("100/d") == (100, 86400)
    assert parse_rate("3/h") == (3, 3600)
    assert parse_rate("0/s") is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TEMPERATURE", 2.5),
        ("TEMPERATURE", -0.1),
        ("MAX_TOKENS", 0),
        ("OPENAI_TIMEOUT", 0.0),
        ("CACHE_TTL", -1),
        ("ALERT_AI_FAILURE_RATE", 1.5),
        ("WIDGET", {"position": "top-left"}),
        ("WIDGET", {"offset_side": -4}),
        ("OPENAI_HTTP_CLIENT", "requests"),
        ("OPENAI_HTTP_CLIENT", "AIOHTTP"),
        ("ASYNC_DATABASE", "on"),
    ],
)
def test_e005_value_out_of_range(key: str, value: Any) -> None:
    errors = config_errors(**{key: value})
    assert ids(errors) == ["sophie_chat.E005"]
    assert key in errors[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TEMPERATURE", 2),
        ("CACHE_TTL", 0),
        ("OPENAI_HTTP_CLIENT", "auto"),
        ("OPENAI_HTTP_CLIENT", "aiohttp"),
        ("OPENAI_HTTP_CLIENT", "httpx"),
        ("ASYNC_DATABASE", "auto"),
        ("ASYNC_DATABASE", "off"),
    ],
)
def test_e005_accepts_the_bounds(key: str, value: Any) -> None:
    assert config_errors(**{key: value}) == []


def test_e006_max_history_page_smaller_than_page() -> None:
    errors = config_errors(HISTORY_PAGE_SIZE=50, MAX_HISTORY_PAGE_SIZE=20)
    assert ids(errors) == ["sophie_chat.E006"]
    assert config_errors(HISTORY_PAGE_SIZE=20, MAX_HISTORY_PAGE_SIZE=20) == []


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("AI_BACKEND", "no_such_module.Backend"),
        ("USER_TYPE_RESOLVER", "sophie_chat.conf.no_such_function"),
        ("USER_CONTEXT_PROVIDER", "not a dotted path"),
        ("SERVICE_INFO_PROVIDER", "sophie_chat.no_such_module.Provider"),
    ],
)
def test_e007_dotted_path_does_not_import(key: str, path: str) -> None:
    errors = config_errors(**{key: path})
    assert ids(errors) == ["sophie_chat.E007"]
    assert path in errors[0].msg
    assert config_errors(**{key: "sophie_chat.conf.get_config"}) == []


@pytest.mark.parametrize(
    ("key", "value", "suggestion"),
    [
        ("WIDGET", {"primary_colour": "#000"}, "primary_color"),
        ("SUPPORT_CONTACT", {"mail": "help@example.com"}, "email"),
    ],
)
def test_e008_unknown_nested_key(key: str, value: dict[str, Any], suggestion: str) -> None:
    errors = config_errors(**{key: value})
    assert ids(errors) == ["sophie_chat.E008"]
    assert errors[0].hint == f"Did you mean {suggestion!r}?"


@pytest.mark.parametrize("url", ["localhost:6379", "http://cache:6379", "redis://:s3cret@h:port/0"])
def test_e009_unparsable_redis_url_in_settings(url: str) -> None:
    with override_settings(CHAT_CONFIG={"REDIS_URL": url}):
        errors = checks.check_redis_url()
    assert ids(errors) == ["sophie_chat.E009"]
    assert 'CHAT_CONFIG["REDIS_URL"]' in errors[0].msg
    assert "s3cret" not in errors[0].msg  # the URL may carry a password


def test_e009_unparsable_redis_url_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "127.0.0.1:6379")
    with override_settings(CHAT_CONFIG={}):
        errors = checks.check_redis_url()
        assert ids(errors) == ["sophie_chat.E009"]
        assert "environment variable" in errors[0].msg
        monkeypatch.setenv("REDIS_URL", "unix:///run/redis.sock")
        assert checks.check_redis_url() == []


def test_e015_aiohttp_asked_for_but_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from sophie_chat.ai import transport

    assert config_errors(OPENAI_HTTP_CLIENT="aiohttp") == []  # openai[aiohttp] is a dependency
    monkeypatch.setattr(transport, "aiohttp_available", lambda: False)
    errors = config_errors(OPENAI_HTTP_CLIENT="aiohttp")
    assert ids(errors) == ["sophie_chat.E015"]
    assert 'pip install "openai[aiohttp]"' in str(errors[0].hint)
    # "auto" asks for aiohttp only where it is installed; httpx never needs it.
    assert config_errors(OPENAI_HTTP_CLIENT="auto") == []
    assert config_errors(OPENAI_HTTP_CLIENT="httpx") == []


@pytest.mark.django_db(transaction=False)
def test_e010_channels_not_installed() -> None:
    with modify_settings(INSTALLED_APPS={"remove": ["channels"]}):
        errors = checks.check_asgi()
    assert ids(errors) == ["sophie_chat.E010"]
    assert checks.check_asgi() == []


def test_e011_no_asgi_application() -> None:
    with override_settings(ASGI_APPLICATION=None):
        errors = checks.check_asgi()
    assert ids(errors) == ["sophie_chat.E011"]
    assert "get_asgi_application()" in str(errors[0].hint)


def test_e012_wildcard_host_without_allowed_origins() -> None:
    with override_settings(ALLOWED_HOSTS=["*"], CHAT_CONFIG={}):
        assert ids(checks.check_allowed_hosts()) == ["sophie_chat.E012"]
        everyday = ids(run_checks(tags=[Tags.security]))
        deploy = ids(run_checks(tags=[Tags.security], include_deployment_checks=True))
    assert "sophie_chat.E012" not in everyday  # a deployment check only
    assert "sophie_chat.E012" in deploy
    origins = {"ALLOWED_ORIGINS": ["https://www.example.com"]}
    with override_settings(ALLOWED_HOSTS=["*"], CHAT_CONFIG=origins):
        assert checks.check_allowed_hosts() == []


def test_e013_no_default_channel_layer() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        errors = checks.check_asgi()
    assert ids(errors) == ["sophie_chat.E013"]


@pytest.mark.parametrize("origin", ["www.example.com", "*", "https://example.com/chat", 443])
def test_e014_allowed_origins_entry_is_not_an_origin(origin: Any) -> None:
    good = ["https://www.example.com/", "http://localhost:8000"]
    with override_settings(CHAT_CONFIG={"ALLOWED_ORIGINS": [*good, origin]}):
        errors = checks.check_allowed_origins()
    assert ids(errors) == ["sophie_chat.E014"]
    assert repr(origin) in errors[0].msg
    assert "https://www.example.com" not in errors[0].msg
    with override_settings(CHAT_CONFIG={"ALLOWED_ORIGINS": good}):
        assert checks.check_allowed_origins() == []


def test_w001_in_memory_layer_without_debug() -> None:
    in_memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=in_memory, DEBUG=False):
        errors = checks.check_in_memory_layer()
        deploy = ids(run_checks(tags=[Tags.compatibility], include_deployment_checks=True))
    assert ids(errors) == ["sophie_chat.W001"]
    assert "redis_channel_layer" in str(errors[0].hint)
    assert "sophie_chat.W001" in deploy
    with override_settings(CHANNEL_LAYERS=in_memory, DEBUG=True):
        assert checks.check_in_memory_layer() == []


def test_w002_api_key_written_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with override_settings(CHAT_CONFIG={"OPENAI_API_KEY": "sk-live-123"}):
        errors = checks.check_api_key_literal()
        assert ids(errors) == ["sophie_chat.W002"]
        assert "sk-live-123" not in errors[0].msg + str(errors[0].hint)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live-123")  # settings read it from the environment
        assert checks.check_api_key_literal() == []
    with override_settings(CHAT_CONFIG={"OPENAI_API_KEY": ""}):
        assert checks.check_api_key_literal() == []


def test_w003_frame_too_small_for_longest_message() -> None:
    errors = config_errors(MAX_MESSAGE_LENGTH=10_000)
    assert ids(errors) == ["sophie_chat.W003"]
    assert "41024" in str(errors[0].hint)


def test_w010_redis_layer_with_channels_redis_defaults() -> None:
    plain = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]},
    }
    with override_settings(CHANNEL_LAYERS={"default": plain}):
        errors = checks.check_channel_layers()
        compat = ids(run_checks(tags=[Tags.compatibility]))
    assert ids(errors) == ["sophie_chat.W010"]
    assert "capacity is 100" in errors[0].msg
    assert "sophie_chat.layers.redis_channel_layer" in str(errors[0].hint)
    assert "sophie_chat.W010" in compat
    tuned = {"default": redis_channel_layer("redis://127.0.0.1:6379/0")}
    with override_settings(CHANNEL_LAYERS=tuned):
        assert checks.check_channel_layers() == []
    low_timeout = redis_channel_layer("redis://127.0.0.1:6379/0", socket_timeout=5)
    with override_settings(CHANNEL_LAYERS={"default": low_timeout}):
        assert "socket_timeout is 5" in checks.check_channel_layers()[0].msg


def code_ids() -> set[str]:
    sources = (ROOT / "src/sophie_chat/checks").glob("*.py")
    return {found for path in sources for found in ID_RE.findall(path.read_text(encoding="utf-8"))}


def test_every_id_is_documented_and_nothing_else() -> None:
    documented = set(ID_RE.findall((ROOT / "docs/checks.rst").read_text(encoding="utf-8")))
    assert code_ids() == documented


def test_every_id_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    names = re.findall(r"^def test_([ew]\d{3})_", source, re.MULTILINE)
    assert {f"sophie_chat.{name.upper()}" for name in names} == code_ids()
