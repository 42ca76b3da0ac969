"""Print the chat widget's transfer size: every JS module and the CSS, gzipped (level 9).

Budget: under 30 KB gzipped in total; exits with status 1 above it.
Run: ``python benchmarks/widget_size.py``.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "src" / "sophie_chat" / "static" / "sophie_chat"
BUDGET = 30 * 1024  # bytes, gzipped


def sizes() -> list[tuple[str, int, int]]:
    """(file name, raw bytes, gzipped bytes) for each widget asset."""
    rows = []
    for path in sorted([*STATIC.glob("*.js"), *STATIC.glob("*.css")]):
        raw = path.read_bytes()
        rows.append((path.name, len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0))))
    return rows


def main() -> int:
    rows = sizes()
    for name, raw, packed in rows:
        print(f"{name:<20} {raw:>7,} B  {packed:>6,} B gzipped")
    total_raw = sum(r[1] for r in rows)
    total = sum(r[2] for r in rows)
    print(f"{'total':<20} {total_raw:>7,} B  {total:>6,} B gzipped ({total / 1024:.1f} KB)")
    verdict = "within" if total < BUDGET else "OVER"
    print(f"budget {BUDGET // 1024} KB gzipped: {verdict}")
    return 0 if total < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
