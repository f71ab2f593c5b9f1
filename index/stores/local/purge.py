"""Deleted documents taken off the disk, not only out of the answers.

A delete or a replace writes a tombstone: the rows stay in their segment's
catalogue, vectors and postings until a merge rewrites it, and the previous
generation, which still lists the segment, is kept for a server holding it.
A document deleted because it must not be kept (personal data, a withdrawn
notice) would stay readable by anyone with the disk. So after such a change,
every segment holding a deleted document is rewritten without it (a merge of
that segment alone, written to a new, compacted SQLite file; a segment left
with no live document is dropped), and every older generation and every
segment no longer listed is removed. Servers holding an older generation keep
reading it from the files they have open until they reload.

What this cannot reach: blocks the filesystem freed but has not reused (use
an encrypted volume where that matters), and the corpus directory the
documents were first read from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.merge import merge_holding_lock
from index.stores.local.vectors import EXACT_MAX

logger = logging.getLogger(__name__)

MAX_TRIES = 5


def purge_deleted(
    data_dir: Path, *, older_generations_hold_them: bool = False, exact_max: int = EXACT_MAX, blocking: bool = True
) -> list[str]:
    """After a change: rewrite or drop each segment that still holds a deleted document behind a tombstone (the
    change's, and any a change killed before its purge left), then remove every generation but the current one
    and the segments it does not list (also when no segment needed it but ``older_generations_hold_them``:
    after a whole rebuild). Returns the segment ids purged; without tombstones, reads one manifest. Not
    ``blocking``: nothing is done while another process holds the merge lock."""
    purged: list[str] = []
    with seg.merge_lock(data_dir, blocking=blocking) as taken:  # no merge copies the rows meanwhile
        if not taken:
            return purged
        tries = 0
        while (found := _tombstoned_segment(data_dir)) is not None:
            at, info, whole = found
            if whole:
                _drop_segment(data_dir, info.segment_id)
            elif merge_holding_lock(data_dir, run=(at, at + 1), exact_max=exact_max) is None:
                tries += 1  # a change switched generations under the rewrite: read the manifest again
                if tries > MAX_TRIES:
                    raise RuntimeError(f"segment {info.segment_id} kept changing while it was purged")
                continue
            purged.append(info.segment_id)
        if purged or older_generations_hold_them:
            with generations.write_lock(data_dir):
                generations.prune_builds(data_dir, keep=1, merge_lock_held=True)
    if purged:
        logger.info("purged deleted documents from segments %s", ", ".join(purged))
    return purged


def _tombstoned_segment(data_dir: Path):
    """(position, info, whether every document of it is deleted) of the first segment with a tombstone;
    None when none has."""
    build_dir = generations.current_build_dir(data_dir)
    if build_dir is None:
        return None
    manifest = generations.read_manifest(build_dir)
    for at, info in enumerate(manifest.segments):
        dead = manifest.tombstones.get(info.segment_id)
        if dead is not None and dead.doc_ids:
            return at, info, len(set(dead.doc_ids)) >= info.documents
    return None


def _drop_segment(data_dir: Path, segment_id: str) -> None:
    """A new generation without a segment whose every document is deleted (its counts are already out)."""
    with generations.write_lock(data_dir):
        manifest = generations.read_manifest(generations.current_build_dir(data_dir))
        segments = [s for s in manifest.segments if s.segment_id != segment_id]
        tombstones = {k: v for k, v in manifest.tombstones.items() if k != segment_id}
        generations.write_generation(data_dir, manifest.model_copy(update={"segments": segments,
                                                                           "tombstones": tombstones}))  # fmt: skip
