from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "widget_size.py"


def load() -> object:
    spec = importlib.util.spec_from_file_location("widget_size", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_widget_assets_stay_under_30_kb_gzipped(capsys: object) -> None:
    size = load()
    rows = size.sizes()  # type: ignore[attr-defined]
    names = {name for name, _, _ in rows}
    assert {"sophie-chat.js", "chat-widget.js", "widget.css"} <= names
    assert sum(packed for _, _, packed in rows) < 30 * 1024
    assert size.main() == 0  # type: ignore[attr-defined]
