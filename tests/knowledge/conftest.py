"""Fixtures of the knowledge tests: the marketplace knowledge base shipped in tests/data/kb."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophie_chat.knowledge import search
from sophie_chat.knowledge.loader import LoadReport, load

KB_DIR = Path(__file__).resolve().parent.parent / "data" / "kb"


@pytest.fixture
def marketplace_kb(db: None) -> LoadReport:
    """The ~60-entry marketplace knowledge base (pt-BR and English), loaded from YAML."""
    search.invalidate()
    return load([KB_DIR])
