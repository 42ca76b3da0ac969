"""sophie_chat_load_kb: idempotent loading, dry runs, deactivation and all-or-nothing errors."""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from sophie_chat.knowledge.search import KnowledgeBase
from sophie_chat.models import KnowledgeBaseEntry

from .conftest import KB_DIR

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sophie_chat_load_kb", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def write_json(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return path


ENTRY = {
    "slug": "encanador",
    "language": "pt-br",
    "category": "service",
    "title": "Encanador",
    "content": "Vazamentos a partir de R$ 130.",
    "keywords": ["cano", "vazamento"],
}


def test_loading_twice_changes_nothing_and_an_edit_updates() -> None:
    total = KnowledgeBaseEntry.objects.count()
    first = run(str(KB_DIR))
    count = KnowledgeBaseEntry.objects.count()
    assert count - total >= 50
    assert f"{count} created, 0 updated, 0 unchanged" in first
    assert run(str(KB_DIR)).startswith(f"0 created, 0 updated, {count} unchanged")
    assert KnowledgeBaseEntry.objects.count() == count


def test_edit_updates_the_entry_in_place(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kb.json", [ENTRY])
    assert "1 created" in run(str(path))
    pk = KnowledgeBaseEntry.objects.get(slug="encanador").pk
    write_json(path, [{**ENTRY, "content": "Vazamentos a partir de R$ 140."}])
    assert "0 created, 1 updated, 0 unchanged" in run(str(path))
    entry = KnowledgeBaseEntry.objects.get(slug="encanador")
    assert (entry.pk, entry.content) == (pk, "Vazamentos a partir de R$ 140.")
    assert entry.keywords == "cano, vazamento"
    assert [r.entry.pk for r in KnowledgeBase().search("vazamento")] == [pk]


def test_same_slug_in_two_languages_are_two_entries(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "kb.json", [ENTRY, {**ENTRY, "language": "en", "title": "Plumber"}]
    )
    assert "2 created" in run(str(path))
    assert KnowledgeBaseEntry.objects.filter(slug="encanador").count() == 2


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kb.json", [ENTRY])
    out = run(str(path), "--dry-run")
    assert "1 created" in out
    assert "dry run" in out
    assert not KnowledgeBaseEntry.objects.exists()


def test_deactivate_missing(tmp_path: Path) -> None:
    other = {**ENTRY, "slug": "pintor", "title": "Pintor"}
    path = write_json(tmp_path / "kb.json", [ENTRY, other])
    run(str(path))
    write_json(path, [ENTRY])
    assert "0 deactivated" in run(str(path))
    assert KnowledgeBaseEntry.objects.get(slug="pintor").is_active
    assert "1 unchanged, 1 deactivated" in run(str(path), "--deactivate-missing")
    assert not KnowledgeBaseEntry.objects.get(slug="pintor").is_active
    assert KnowledgeBase().search("pintor") == []


def test_bad_files_report_every_error_and_write_nothing(tmp_path: Path) -> None:
    good = write_json(tmp_path / "a_good.json", [ENTRY])
    bad = write_json(
        tmp_path / "b_bad.json",
        [
            {**ENTRY, "slug": "ok-2"},
            {"slug": "no-title", "content": "x"},
            {**ENTRY, "slug": "x", "category": "nonsense", "audience": "everyone"},
            {**ENTRY, "slug": "y", "url_pattern": "^/servicos/(", "colour": "blue"},
            {**ENTRY, "slug": "z", "link": {"model": "auth.group", "pk": 999}},
            "not a mapping",
        ],
    )
    (tmp_path / "c_broken.json").write_text("[{", encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("sophie_chat_load_kb", str(tmp_path), stdout=StringIO(), stderr=err)
    errors = err.getvalue()
    assert f"{bad} entry 1 (slug 'no-title'): title is required" in errors
    assert f"{bad} entry 2 (slug 'x'): category 'nonsense' is not one of" in errors
    assert f"{bad} entry 2 (slug 'x'): audience must be empty, client or provider" in errors
    assert f"{bad} entry 3 (slug 'y'): unknown keys colour" in errors
    assert "url_pattern is not a valid regular expression" in errors
    assert "link auth.group pk=999 does not exist" in errors
    assert f"{bad} entry 5: an entry must be a mapping" in errors
    assert "c_broken.json: invalid JSON" in errors
    assert not KnowledgeBaseEntry.objects.exists()
    # The good file alone loads.
    assert "1 created" in run(str(good))


def test_duplicate_slugs_across_files_are_errors(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", [ENTRY])
    write_json(tmp_path / "b.json", [ENTRY])
    with pytest.raises(CommandError):
        call_command("sophie_chat_load_kb", str(tmp_path), stdout=StringIO(), stderr=StringIO())
    assert not KnowledgeBaseEntry.objects.exists()


def test_link_to_an_object_and_yaml_keywords_as_string(tmp_path: Path) -> None:
    group = Group.objects.create(name="Encanadores")
    path = tmp_path / "kb.yaml"
    path.write_text(
        "entries:\n"
        "  - slug: grupo\n"
        "    title: Encanadores\n"
        "    content: Profissionais de hidráulica.\n"
        "    keywords: cano, vazamento\n"
        "    active: false\n"
        f"    link: {{model: auth.group, pk: {group.pk}}}\n",
        encoding="utf-8",
    )
    run(str(path))
    entry = KnowledgeBaseEntry.objects.get(slug="grupo")
    assert entry.linked_object == group
    assert entry.language == "pt-br"  # DEFAULT_LANGUAGE
    assert entry.keywords == "cano, vazamento"
    assert entry.is_active is False
    assert "1 unchanged" in run(str(path))


def test_yaml_without_pyyaml_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text("- slug: a\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "yaml", None)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("sophie_chat_load_kb", str(path), stdout=StringIO(), stderr=err)
    assert "pip install 'django-sophie-chat[yaml]'" in err.getvalue()


def test_missing_path_and_no_arguments(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="at least one"):
        call_command("sophie_chat_load_kb", stdout=StringIO())
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("sophie_chat_load_kb", str(tmp_path / "nope.json"), stderr=err)
    assert "no such file" in err.getvalue()


def test_reindex_option() -> None:
    KnowledgeBaseEntry.objects.bulk_create(
        [KnowledgeBaseEntry(slug="a", title="Marceneiro", content="Móveis sob medida")]
    )
    assert "1 entries reindexed" in run("--reindex")
    assert KnowledgeBaseEntry.objects.get(slug="a").search_text.startswith("marceneir")
