"""Writes that survive a power cut: file contents and directory entries on disk before a switch points at them.

A rename is atomic but not durable: after a power cut, CURRENT may name a generation whose files the disk never
received, or a segment.json may stand beside an empty vectors.faiss. So a segment's files, then its directory,
are synced before segment.json marks it finished; and a generation's manifest and directory before CURRENT
is switched to it, and CURRENT's directory after.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sync_directory(path: Path) -> None:
    """The directory's entries (names made, renamed or removed in it) on disk."""
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def sync_tree(path: Path) -> None:
    """Every file below ``path``, then every directory from the deepest up to ``path`` itself."""
    directories = [path]
    for root, dirs, files in os.walk(path):
        for name in files:
            sync_file(Path(root) / name)
        directories += [Path(root) / name for name in dirs]
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        sync_directory(directory)


def write_durably(path: Path, text: str) -> None:
    """``text`` in ``path``, whole or not at all, and on disk when this returns."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_directory(path.parent)
