"""System checks; the foundation fills them in."""

from __future__ import annotations
