"""Load knowledge base entries from YAML or JSON files (``sophie_chat_load_kb``).

A file holds a list of entries (or ``{"entries": [...]}``)::

    - slug: cancelar-servico
      language: pt-br
      category: policy
      title: Como cancelar um serviço
      content: Você pode cancelar até 24 horas antes sem custo...
      keywords: [cancelar, cancelamento, desistir]
      audience: client           # "" (everyone), client or provider
      url: /pedidos/
      url_pattern: ""            # a path regex, a view name or status:404
      active: true
      link: {model: marketplace.service, pk: 3}

Loading is all or nothing: every entry is validated first, then written in one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from sophie_chat.conf import get_config
from sophie_chat.knowledge import search
from sophie_chat.knowledge.text import build_search_text
from sophie_chat.models import KnowledgeBaseEntry

KEYS = {
    "slug",
    "language",
    "category",
    "title",
    "content",
    "keywords",
    "audience",
    "url",
    "url_pattern",
    "active",
    "link",
}
AUDIENCES = ("", "client", "provider")
_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
_FIELDS = ("category", "title", "content", "keywords", "audience", "url", "url_pattern")
_MAX = {"slug": 120, "title": 200, "keywords": 500, "url": 500, "url_pattern": 200, "language": 16}
SUFFIXES = (".yaml", ".yml", ".json")


class LoadError(Exception):
    """Files that cannot be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    dry_run: bool = False


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, plus the YAML/JSON files of directories named (recursively, sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
        else:
            files.append(path)
    return files


def read_file(path: Path) -> Any:
    if not path.exists():
        raise LoadError([f"{path}: no such file"])
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise LoadError(
                [
                    f"{path}: reading YAML needs PyYAML: "
                    "pip install 'django-sophie-chat[yaml]' (or use JSON)"
                ]
            ) from None
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise LoadError([f"{path}: invalid YAML: {exc}"]) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LoadError([f"{path}: invalid JSON: {exc}"]) from None


def _link(value: Any, where: str, errors: list[str]) -> tuple[ContentType | None, str]:
    if value in (None, ""):
        return None, ""
    if not isinstance(value, dict) or "model" not in value or "pk" not in value:
        errors.append(f'{where}: link must be {{model: "app_label.model", pk: ...}}')
        return None, ""
    try:
        model = apps.get_model(str(value["model"]))
    except (LookupError, ValueError):
        errors.append(f"{where}: link model {value['model']!r} is not installed")
        return None, ""
    if not model._default_manager.filter(pk=value["pk"]).exists():
        errors.append(f"{where}: link {value['model']} pk={value['pk']!r} does not exist")
        return None, ""
    return ContentType.objects.get_for_model(model), str(value["pk"])


def validate(item: Any, where: str, default_language: str) -> tuple[dict[str, Any], list[str]]:
    """The model field values of one entry, and the problems found."""
    errors: list[str] = []
    if not isinstance(item, dict):
        return {}, [f"{where}: an entry must be a mapping"]
    where = f"{where} (slug {item.get('slug')!r})" if item.get("slug") else where
    unknown = sorted(set(item) - KEYS)
    if unknown:
        errors.append(f"{where}: unknown keys {', '.join(map(str, unknown))}")
    for key in ("slug", "title", "content"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            errors.append(f"{where}: {key} is required")
    keywords = item.get("keywords") or ""
    if isinstance(keywords, list):
        keywords = ", ".join(str(k).strip() for k in keywords)
    values: dict[str, Any] = {
        "slug": str(item.get("slug") or "").strip(),
        "language": str(item.get("language") or default_language).strip().lower(),
        "category": str(item.get("category") or "general").strip(),
        "title": str(item.get("title") or "").strip(),
        "content": str(item.get("content") or "").strip(),
        "keywords": str(keywords).strip(),
        "audience": str(item.get("audience") or "").strip(),
        "url": str(item.get("url") or "").strip(),
        "url_pattern": str(item.get("url_pattern") or "").strip(),
        "is_active": item.get("active", True),
    }
    if values["slug"] and not _SLUG_RE.match(values["slug"]):
        errors.append(f"{where}: slug may hold only letters, digits, - and _")
    if values["category"] not in KnowledgeBaseEntry.Category.values:
        allowed = ", ".join(KnowledgeBaseEntry.Category.values)
        errors.append(f"{where}: category {values['category']!r} is not one of {allowed}")
    if values["audience"] not in AUDIENCES:
        errors.append(f"{where}: audience must be empty, client or provider")
    if not isinstance(values["is_active"], bool):
        errors.append(f"{where}: active must be true or false")
    pattern = values["url_pattern"]
    if pattern and not pattern.startswith("status:"):
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(f"{where}: url_pattern is not a valid regular expression ({exc})")
    for key, cap in _MAX.items():
        if len(values[key]) > cap:
            errors.append(f"{where}: {key} is longer than {cap} characters")
    values["content_type"], values["object_id"] = _link(item.get("link"), where, errors)
    return values, errors


def collect(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read and validate every entry of ``paths``; raise :class:`LoadError` listing problems."""
    default_language = str(get_config()["DEFAULT_LANGUAGE"]).lower()
    errors: list[str] = []
    entries: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], str] = {}
    files = expand_paths(paths)
    if not files:
        raise LoadError(["no YAML or JSON files found"])
    for path in files:
        try:
            data = read_file(path)
        except LoadError as exc:
            errors += exc.errors
            continue
        if isinstance(data, dict) and "entries" in data:
            data = data["entries"]
        if not isinstance(data, list):
            errors.append(f"{path}: expected a list of entries")
            continue
        for index, item in enumerate(data):
            where = f"{path} entry {index}"
            values, problems = validate(item, where, default_language)
            errors += problems
            key = (values.get("slug", ""), values.get("language", ""))
            if not problems and key in seen:
                errors.append(f"{where}: slug {key[0]!r} ({key[1]}) is also in {seen[key]}")
            seen.setdefault(key, where)
            if not problems:
                entries.append(values)
    if errors:
        raise LoadError(errors)
    return entries


def _differs(entry: KnowledgeBaseEntry, values: dict[str, Any]) -> bool:
    if entry.content_type_id != (values["content_type"].pk if values["content_type"] else None):
        return True
    return any(
        getattr(entry, name) != values[name] for name in (*_FIELDS, "is_active", "object_id")
    )


def load(
    paths: Sequence[str | Path], *, deactivate_missing: bool = False, dry_run: bool = False
) -> LoadReport:
    """Create or update entries (by slug and language) from files, in one transaction.

    Re-running with the same files changes nothing. ``deactivate_missing`` deactivates active
    entries that none of the files mention; ``dry_run`` reports without writing.
    """
    entries = collect(paths)
    report = LoadReport(dry_run=dry_run)
    with transaction.atomic():
        existing = {(e.slug, e.language): e for e in KnowledgeBaseEntry.objects.all()}
        for values in entries:
            key = (values["slug"], values["language"])
            label = f"{key[0]} ({key[1]})"
            entry = existing.get(key)
            if entry is None:
                if not dry_run:
                    KnowledgeBaseEntry.objects.create(**values)
                report.created.append(label)
            elif _differs(entry, values):
                if not dry_run:
                    for name, value in values.items():
                        setattr(entry, name, value)
                    entry.save()
                report.updated.append(label)
            else:
                report.unchanged.append(label)
        if deactivate_missing:
            wanted = {(v["slug"], v["language"]) for v in entries}
            for key, entry in existing.items():
                if key not in wanted and entry.is_active:
                    report.deactivated.append(f"{key[0]} ({key[1]})")
                    if not dry_run:
                        entry.is_active = False
                        entry.save(update_fields=["is_active", "updated_at"])
    return report


def reindex(batch_size: int = 500) -> int:
    """Recompute ``search_text`` of every entry (after bulk_create or queryset.update()).

    Returns the number of entries. On PostgreSQL the update also refreshes the full-text
    vector (its trigger runs on every UPDATE).
    """
    count = 0
    with transaction.atomic():
        batch: list[KnowledgeBaseEntry] = []
        for entry in KnowledgeBaseEntry.objects.order_by("pk").iterator(chunk_size=batch_size):
            entry.search_text = build_search_text(
                entry.title, entry.keywords, entry.content, entry.language
            )
            batch.append(entry)
            if len(batch) >= batch_size:
                KnowledgeBaseEntry.objects.bulk_update(batch, ["search_text"])
                count += len(batch)
                batch = []
        if batch:
            KnowledgeBaseEntry.objects.bulk_update(batch, ["search_text"])
            count += len(batch)
    search.invalidate()
    return count
