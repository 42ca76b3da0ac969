"""``get_config()`` merging, and docs/configuration.rst kept in step with the defaults."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from sophie_chat.checks.config import expected_types, type_names
from sophie_chat.conf import SophieChatAppConf, default_keys, get_config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.rst"
BLOCK_RE = re.compile(r"^\.\. setting:: (\S+)\n((?:[ \t]*\n|   .*\n)*)", re.MULTILINE)
FIELD_RE = re.compile(r"^   :(\w+): (.*)$", re.MULTILINE)
ENV_KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL")


def documented() -> dict[str, dict[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    blocks: dict[str, dict[str, str]] = {}
    for name, body in BLOCK_RE.findall(text):
        assert name not in blocks, f"{name} is documented twice"
        blocks[name] = dict(FIELD_RE.findall(body)) | {"_body": body}
    return blocks


def code_keys() -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for key, default in SophieChatAppConf.DEFAULTS.items():
        keys[key] = default
        if isinstance(default, dict):
            keys.update({f"{key}.{sub}": value for sub, value in default.items()})
    return keys


def test_every_key_is_documented_and_nothing_else() -> None:
    docs, code = set(documented()), set(code_keys())
    assert code - docs == set(), "keys missing from docs/configuration.rst"
    assert docs - code == set(), "docs/configuration.rst documents keys conf.py does not have"


@pytest.mark.parametrize("key", sorted(code_keys()))
def test_documented_default_type_and_unit(key: str) -> None:
    block = documented()[key]
    default = code_keys()[key]
    assert block["_body"].count("\n   ") >= 3, f"{key}: say what it means"
    assert set(re.findall(r"``(\w+)``", block["type"])) == type_names(key), key
    if isinstance(default, dict):
        return  # its sub-keys carry the defaults
    literal = re.fullmatch(r"``(.*)``", block["default"])
    assert literal, f"{key}: the default must be a literal in double backquotes"
    assert ast.literal_eval(literal.group(1)) == default
    numeric = expected_types(key)[0] in {(int,), (int, float)}
    assert ("unit" in block) == numeric, f"{key}: numbers have a unit, other types do not"


def test_partial_config_keeps_the_other_defaults() -> None:
    with override_settings(CHAT_CONFIG={"OPENAI_MODEL": "gpt-test", "RATE_LIMIT": "5/s"}):
        config = get_config()
    assert config["OPENAI_MODEL"] == "gpt-test"
    assert config["RATE_LIMIT"] == "5/s"
    assert config["MAX_TOKENS"] == SophieChatAppConf.DEFAULTS["MAX_TOKENS"]
    assert set(config) == set(default_keys())


@pytest.mark.parametrize("value", [None, {}])
def test_no_config_gives_the_defaults(monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    for name in ENV_KEYS:
        monkeypatch.delenv(name, raising=False)
    with override_settings(CHAT_CONFIG=value):
        assert get_config() == SophieChatAppConf.DEFAULTS


def test_nested_dicts_merge_one_level_deep() -> None:
    widget = {"primary_color": "#000000"}
    contact = {"email": "ajuda@example.com"}
    with override_settings(CHAT_CONFIG={"WIDGET": widget, "SUPPORT_CONTACT": contact}):
        config = get_config()
    assert config["WIDGET"] == {**SophieChatAppConf.DEFAULTS["WIDGET"], "primary_color": "#000000"}
    assert config["SUPPORT_CONTACT"]["email"] == "ajuda@example.com"
    assert config["SUPPORT_CONTACT"]["phone"] == ""
    assert widget == {"primary_color": "#000000"}  # the site's dict is not changed
    assert SophieChatAppConf.DEFAULTS["WIDGET"]["primary_color"] == "#5b2bd6"


def test_override_settings_applies_at_call_time() -> None:
    with override_settings(CHAT_CONFIG={"HISTORY_PAGE_SIZE": 5}):
        assert get_config()["HISTORY_PAGE_SIZE"] == 5
        with override_settings(CHAT_CONFIG={"HISTORY_PAGE_SIZE": 7}):
            assert get_config()["HISTORY_PAGE_SIZE"] == 7
        assert get_config()["HISTORY_PAGE_SIZE"] == 5
    assert get_config()["HISTORY_PAGE_SIZE"] == 20


@pytest.mark.parametrize("name", ENV_KEYS)
def test_environment_fills_keys_left_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "redis://from-env:6379/0")
    with override_settings(CHAT_CONFIG={}):
        assert get_config()[name] == "redis://from-env:6379/0"
    with override_settings(CHAT_CONFIG={name: "redis://from-settings:6379/0"}):
        assert get_config()[name] == "redis://from-settings:6379/0"
    monkeypatch.setenv(name, "")  # an empty variable counts as unset
    with override_settings(CHAT_CONFIG={}):
        assert get_config()[name] is None


def test_empty_string_in_settings_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test settings rely on this: OPENAI_API_KEY "" keeps a developer's key out of the tests.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with override_settings(CHAT_CONFIG={"OPENAI_API_KEY": ""}):
        assert get_config()["OPENAI_API_KEY"] == ""


def test_the_merge_is_remembered_but_never_shared(settings, monkeypatch):
    from sophie_chat import conf

    settings.CHAT_CONFIG = {"ASSISTANT_NAME": "Ana"}
    first = conf.get_config()
    first["ASSISTANT_NAME"] = "changed by a caller"
    first["WIDGET"]["position"] = "changed by a caller"
    assert conf.get_config()["ASSISTANT_NAME"] == "Ana"  # each call gets its own copy
    assert conf.get_config()["WIDGET"]["position"] == "bottom-right"
    settings.CHAT_CONFIG = {"ASSISTANT_NAME": "Bia"}  # a new object: merged again
    assert conf.get_config()["ASSISTANT_NAME"] == "Bia"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/9")
    assert conf.get_config()["REDIS_URL"] == "redis://127.0.0.1:6379/9"
    monkeypatch.delenv("REDIS_URL")
    assert conf.get_config()["REDIS_URL"] is None
