"""Checks of the ``CHAT_CONFIG`` setting: keys, value types, ranges and dotted paths."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from sophie_chat.conf import SophieChatAppConf, get_config

#: Types of the keys whose default is ``None`` (``None`` is always allowed for them). The expected
#: type of every other key is the type of its default. A new key defaulting to ``None`` needs an
#: entry here; tests/test_checks.py fails until it has one.
NONE_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "AI_BACKEND": (str,),
    "OPENAI_API_KEY": (str,),
    "OPENAI_BASE_URL": (str,),
    "USER_CONTEXT_PROVIDER": (str,),
    "SERVICE_INFO_PROVIDER": (str,),
    "REDIS_URL": (str,),
    "ALLOWED_ORIGINS": (list, tuple),
    "METRICS_TOKEN": (str,),
}
#: Keys holding lists, and the type of their items.
LIST_ITEM_TYPES: dict[str, type] = {"FRUSTRATION_WORDS": str, "ALLOWED_ORIGINS": str}
#: Keys that must be > 0, keys that must be >= 0, and keys bounded on both sides (inclusive).
POSITIVE = frozenset(
    {
        "OPENAI_TIMEOUT",
        "OPENAI_FIRST_TOKEN_TIMEOUT",
        "MAX_TOKENS",
        "MAX_PROMPT_CHARS",
        "SESSION_TTL",
        "HISTORY_PAGE_SIZE",
        "MAX_HISTORY_PAGE_SIZE",
        "DB_THREADS",
        "MAX_MESSAGE_LENGTH",
        "MAX_FRAME_BYTES",
        "ALERT_WINDOW",
        "ALERT_MIN_CALLS",
    }
)
NON_NEGATIVE = frozenset(
    {
        "OPENAI_MAX_RETRIES",
        "HISTORY_MESSAGES_FOR_MODEL",
        "DAILY_TOKEN_BUDGET",
        "CACHE_TTL",
        "STREAM_COALESCE_MS",
        "ESCALATION_FALLBACK_THRESHOLD",
        "ALERT_COOLDOWN",
        "RETENTION_DAYS",
        "WIDGET.offset_bottom",
        "WIDGET.offset_side",
    }
)
BETWEEN: dict[str, tuple[float, float]] = {
    "TEMPERATURE": (0.0, 2.0),
    "ALERT_AI_FAILURE_RATE": (0.0, 1.0),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "WIDGET.position": ("bottom-right", "bottom-left"),
    "ASYNC_DATABASE": ("auto", "off"),
    "OPENAI_HTTP_CLIENT": ("auto", "aiohttp", "httpx"),
}
#: Keys naming something to import: the check imports it, so a typo fails at start-up.
DOTTED_PATHS = (
    "AI_BACKEND",
    "USER_TYPE_RESOLVER",
    "USER_CONTEXT_PROVIDER",
    "SERVICE_INFO_PROVIDER",
)

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*$")
_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A user message travels as JSON: up to 4 UTF-8 bytes per character plus the frame's envelope.
_FRAME_ENVELOPE_BYTES = 1024


def parse_rate(value: str) -> tuple[int, int] | None:
    """Parse ``"N/s|m|h|d"`` into ``(N, window seconds)``; ``None`` when it is not one."""
    match = _RATE_RE.match(value)
    if not match or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)), _RATE_UNITS[match.group(2)]


def expected_types(key: str) -> tuple[tuple[type, ...], bool]:
    """Return the types a key (``"KEY"`` or ``"PARENT.sub"``) accepts, and if None is allowed."""
    default = _default(key)
    if default is None:
        return NONE_DEFAULT_TYPES.get(key, (object,)), True
    if isinstance(default, bool):
        return (bool,), False
    if isinstance(default, float):
        return (int, float), False  # 20 means 20.0 seconds
    if isinstance(default, (list, tuple)):
        return (list, tuple), False
    return (type(default),), False


def type_names(key: str) -> set[str]:
    """The names docs/configuration.rst uses for a key's type (``{"str", "None"}``)."""
    types, nullable = expected_types(key)
    names = {"float" if float in types else "list" if list in types else types[0].__name__}
    return names | {"None"} if nullable else names


def _default(key: str) -> Any:
    parent, _, sub = key.partition(".")
    default = SophieChatAppConf.DEFAULTS[parent]
    return default[sub] if sub else default


def _type_ok(key: str, value: Any) -> bool:
    types, nullable = expected_types(key)
    if value is None:
        return nullable
    if isinstance(value, bool) and bool not in types:
        return False  # bool is an int subclass, but True is not a page size
    return isinstance(value, types)


def _describe(key: str) -> str:
    return " or ".join(sorted(type_names(key), key=lambda name: name == "None"))


@register(Tags.compatibility)
def check_chat_config(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check every ``CHAT_CONFIG`` key a site sets: name, type, range, importability."""
    user = getattr(settings, "CHAT_CONFIG", None)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return [
            Error(
                f"CHAT_CONFIG must be a dict, not {type(user).__name__}.",
                hint='Set CHAT_CONFIG = {"OPENAI_MODEL": "gpt-4o-mini", ...} or remove it.',
                id="sophie_chat.E001",
            )
        ]
    errors: list[CheckMessage] = []
    typed_ok: set[str] = set()
    for key, value in user.items():
        if key not in SophieChatAppConf.DEFAULTS:
            errors.append(_unknown(str(key), list(SophieChatAppConf.DEFAULTS), "CHAT_CONFIG"))
            continue
        if not _type_ok(key, value):
            errors.append(_bad_type(key, value))
            continue
        typed_ok.add(key)
        if isinstance(value, dict):
            errors.extend(_check_nested(key, value))
        elif (
            key in LIST_ITEM_TYPES
            and value is not None
            and not all(isinstance(item, LIST_ITEM_TYPES[key]) for item in value)
        ):
            errors.append(_bad_type(key, value, items=LIST_ITEM_TYPES[key]))
    config = get_config()
    errors.extend(_check_values(config, user, typed_ok))
    return errors


def _unknown(key: str, known: list[str], where: str) -> Error:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(known))}."
    code = "sophie_chat.E002" if where == "CHAT_CONFIG" else "sophie_chat.E008"
    return Error(f"Unknown key {key!r} in {where}.", hint=hint, id=code)


def _name(key: str) -> str:
    """``WIDGET.position`` -> ``CHAT_CONFIG["WIDGET"]["position"]``."""
    return "CHAT_CONFIG" + "".join(f'["{part}"]' for part in key.split("."))


def _bad_type(key: str, value: Any, items: type | None = None) -> Error:
    expected = f"a list of {items.__name__}" if items is not None else _describe(key)
    return Error(
        f"{_name(key)} must be {expected}, not {type(value).__name__}.",
        hint=f"The default is {_default(key)!r}; see docs/configuration.rst.",
        id="sophie_chat.E003",
    )


def _check_nested(parent: str, value: dict[str, Any]) -> list[CheckMessage]:
    known = list(SophieChatAppConf.DEFAULTS[parent])
    errors: list[CheckMessage] = []
    for sub, sub_value in value.items():
        if sub not in known:
            errors.append(_unknown(str(sub), known, f'CHAT_CONFIG["{parent}"]'))
        elif not _type_ok(f"{parent}.{sub}", sub_value):
            errors.append(_bad_type(f"{parent}.{sub}", sub_value))
    return errors


def _value_of(config: dict[str, Any], key: str) -> Any:
    parent, _, sub = key.partition(".")
    return config[parent].get(sub) if sub else config[parent]


def _out_of_range(key: str, value: Any, rule: str) -> Error:
    return Error(
        f"{_name(key)} is {value!r}; it must be {rule}.",
        hint=f"The default is {_default(key)!r}; see docs/configuration.rst for its unit.",
        id="sophie_chat.E005",
    )


def _check_values(
    config: dict[str, Any], user: dict[str, Any], typed_ok: set[str]
) -> list[CheckMessage]:
    # Only keys whose type is right (or which the site left at their default) are range-checked,
    # so a wrong type gives one clear message, not two.
    def ok(key: str) -> bool:
        parent = key.partition(".")[0]
        if parent not in user:
            return True
        return parent in typed_ok and _type_ok(key, _value_of(config, key))

    errors: list[CheckMessage] = []
    for key in sorted(POSITIVE | NON_NEGATIVE | set(BETWEEN) | set(CHOICES)):
        if not ok(key):
            continue
        value = _value_of(config, key)
        if key in POSITIVE and not value > 0:
            errors.append(_out_of_range(key, value, "greater than 0"))
        elif key in NON_NEGATIVE and not value >= 0:
            errors.append(_out_of_range(key, value, "0 or more"))
        elif key in BETWEEN and not BETWEEN[key][0] <= value <= BETWEEN[key][1]:
            low, high = BETWEEN[key]
            errors.append(_out_of_range(key, value, f"between {low} and {high}"))
        elif key in CHOICES and value not in CHOICES[key]:
            errors.append(_out_of_range(key, value, "one of " + ", ".join(map(repr, CHOICES[key]))))
    if ok("RATE_LIMIT") and parse_rate(config["RATE_LIMIT"]) is None:
        errors.append(
            Error(
                f'CHAT_CONFIG["RATE_LIMIT"] is {config["RATE_LIMIT"]!r}, which is not a rate.',
                hint='Write "N/s", "N/m", "N/h" or "N/d" with N > 0, for example "10/m".',
                id="sophie_chat.E004",
            )
        )
    pages = ("HISTORY_PAGE_SIZE", "MAX_HISTORY_PAGE_SIZE")
    if all(ok(key) for key in pages) and config[pages[1]] < config[pages[0]]:
        errors.append(
            Error(
                f"MAX_HISTORY_PAGE_SIZE ({config[pages[1]]}) is smaller than HISTORY_PAGE_SIZE "
                f"({config[pages[0]]}).",
                hint="Raise MAX_HISTORY_PAGE_SIZE to at least HISTORY_PAGE_SIZE.",
                id="sophie_chat.E006",
            )
        )
    sizes = ("MAX_MESSAGE_LENGTH", "MAX_FRAME_BYTES")
    needed = config[sizes[0]] * 4 + _FRAME_ENVELOPE_BYTES if ok(sizes[0]) else 0
    if ok(sizes[1]) and config[sizes[1]] < needed:
        errors.append(
            Warning(
                f"MAX_FRAME_BYTES ({config[sizes[1]]}) may be too small for a message of "
                f"MAX_MESSAGE_LENGTH ({config[sizes[0]]}) characters.",
                hint=f"Set MAX_FRAME_BYTES to at least {needed} (4 bytes per character + 1 KiB).",
                id="sophie_chat.W003",
            )
        )
    if ok("OPENAI_HTTP_CLIENT") and config["OPENAI_HTTP_CLIENT"] == "aiohttp":
        errors.extend(_check_aiohttp())
    errors.extend(_check_imports(config, [key for key in DOTTED_PATHS if ok(key)]))
    return errors


def _check_aiohttp() -> list[CheckMessage]:
    # Imported here: the SDK takes a second to import, and only this setting needs it.
    from sophie_chat.ai.transport import aiohttp_available

    if aiohttp_available():
        return []
    # At run time the chat falls back to httpx; a site that asked for aiohttp by name wants to
    # know that its workers spend about twice the CPU reading each answer.
    return [
        Error(
            'CHAT_CONFIG["OPENAI_HTTP_CLIENT"] is "aiohttp", but the openai SDK cannot use '
            "aiohttp here.",
            hint='Install the SDK with its aiohttp extra: pip install "openai[aiohttp]" (an '
            "install with --no-deps or a constraints file may have left it out), or set "
            '"auto" to use aiohttp only where it is installed.',
            id="sophie_chat.E015",
        )
    ]


def _check_imports(config: dict[str, Any], keys: list[str]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in keys:
        path = config[key]
        if path is None:
            continue
        try:
            import_string(path)
        except Exception as exc:  # an import error, or anything the module raises on import
            errors.append(
                Error(
                    f'CHAT_CONFIG["{key}"] = {path!r} cannot be imported '
                    f"({type(exc).__name__}: {exc}).",
                    hint="Give the full dotted path of a module attribute, "
                    '"package.module.Name", importable from the site\'s Python path.',
                    id="sophie_chat.E007",
                )
            )
    return errors
