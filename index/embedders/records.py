"""Small JSON records kept in a model directory (measured agreement, measured runtimes)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_record(path: Path) -> dict:
    """What the file keeps; an unreadable or foreign file keeps nothing (measured again, never trusted)."""
    try:
        kept = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def write_record(path: Path, kept: dict) -> None:
    """Written whole and renamed, so that a reader never sees half of it."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(kept, indent=2, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)
