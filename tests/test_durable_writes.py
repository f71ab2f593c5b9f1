"""Every file and directory entry of a change is on disk before CURRENT points at it (issue 27, item 9).

A power cut cannot be staged here, so the test watches the system calls a cut would test: each fsync (which
file or directory it reached) and each rename, in order. Only catalogue.sqlite3 and manifest.json were synced
before: vectors.faiss, lexical.npz, sentences.npy, segment.json, CURRENT and the directories were not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from index.ingest.documents import SourceDocument
from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.live import change_index

DOCUMENT = SourceDocument(
    "durable",
    "关于村务公开的通知",
    "durable.txt",
    "关于村务公开的通知\n一、村务要按时公开。\n二、账目每季度公布一次。\n",
)


@pytest.fixture
def watched(monkeypatch):
    """The events, in order: ("fsync", path), and ("fsync", destination) for a synced file renamed into place."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")))
        return real_fsync(fd)

    def replace(source, destination, **kwargs):
        source = os.path.realpath(source)
        real_replace(source, destination, **kwargs)
        if ("fsync", source) in events:  # its content reached the disk under the temporary name
            events.append(("fsync", os.path.realpath(destination)))
        events.append(("replace", os.path.realpath(destination)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_change_is_on_disk_before_current_switches_to_it(seed_data_dir, tmp_path, embedder, watched):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    watched.clear()
    change_index(data_dir=data_dir, embedder=embedder, sources=[DOCUMENT])

    current = data_dir / "index" / "CURRENT"
    switched = watched.index(("replace", str(current.resolve())))
    synced_before = {path for kind, path in watched[:switched] if kind == "fsync"}
    build_dir = generations.current_build_dir(data_dir).resolve()
    segment_dir = (seg.segments_root(data_dir) / generations.read_manifest(build_dir).segments[-1].segment_id).resolve()

    unsynced = [str(p) for p in [*segment_dir.rglob("*"), *build_dir.rglob("*")] if str(p) not in synced_before]
    assert unsynced == []
    for directory in (segment_dir, segment_dir.parent, build_dir, build_dir.parent):
        assert str(directory) in synced_before, directory
    assert ("fsync", str(current.parent.resolve())) in watched[switched:]  # the rename itself, made durable
    assert Path(current).read_text().strip() == build_dir.name
