"""An index on disk: immutable build directories and an atomically switched CURRENT.

DATA_DIR/index/<build_id>/manifest.json, catalogue.sqlite3, vectors.faiss,
                          sentences.npy, lexical.npz
DATA_DIR/index/CURRENT    the build id being served
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from index.errors import IndexFormatError, IndexMismatchError, IndexNotFoundError
from index.stores.catalogue import SqliteCatalogue
from index.stores.lexical import Bm25LexicalStore
from index.stores.sentence_vectors import SentenceVectorStore
from index.stores.vectors import FaissVectorStore

logger = logging.getLogger(__name__)

# 2: documents carry their origin and page spans; 3: BM25 as arrays, sentence vectors as .npy
FORMAT_VERSION = 3
# Bump when cleaning, chunking or embedding input changes, so a rebuild does
# not reuse vectors computed from differently prepared text.
PIPELINE_VERSION = 4

CATALOGUE_FILE = "catalogue.sqlite3"
VECTORS_FILE = "vectors.faiss"
SENTENCES_FILE = "sentences.npy"
LEXICAL_FILE = "lexical.npz"
MANIFEST_FILE = "manifest.json"


class EmbedderInfo(BaseModel):
    name: str
    dimension: int


class ChunkingInfo(BaseModel):
    target_chars: int
    max_chars: int
    overlap_chars: int


class IndexManifest(BaseModel):
    format_version: int = FORMAT_VERSION
    pipeline_version: int = PIPELINE_VERSION
    build_id: str
    created_at: str
    embedder: EmbedderInfo
    chunking: ChunkingInfo
    counts: dict[str, int]
    timings_s: dict[str, float]
    versions: dict[str, str]
    # Other embedders measured against this index's vectors (see embedders/agreement.py).
    query_embedders: dict[str, dict[str, float]] = {}
    vector_index: str = "exact"  # or "ivf<lists>,nprobe=<n>" above the exact-search threshold

    def reusable_by(self, embedder: EmbedderInfo, chunking: ChunkingInfo) -> bool:
        """Whether a new build with these settings may copy this build's chunks and vectors."""
        return (
            self.embedder == embedder
            and self.chunking == chunking
            and self.pipeline_version == PIPELINE_VERSION
            and self.format_version == FORMAT_VERSION
        )


def index_root(data_dir: Path) -> Path:
    return Path(data_dir) / "index"


def new_build_dir(data_dir: Path) -> Path:
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)  # sorts by time
    path = index_root(data_dir) / build_id
    path.mkdir(parents=True)
    return path


def current_build_dir(data_dir: Path) -> Path | None:
    pointer = index_root(data_dir) / "CURRENT"
    if not pointer.exists():
        return None
    path = index_root(data_dir) / pointer.read_text(encoding="utf-8").strip()
    return path if (path / MANIFEST_FILE).exists() else None


def switch_current(data_dir: Path, build_dir: Path) -> None:
    """Point CURRENT at a finished build; readers see the old or the new one, never half."""
    pointer = index_root(data_dir) / "CURRENT"
    temporary = pointer.with_name(f"CURRENT.{os.getpid()}.tmp")
    temporary.write_text(build_dir.name + "\n", encoding="utf-8")
    os.replace(temporary, pointer)


@contextlib.contextmanager
def write_lock(data_dir: Path) -> Iterator[None]:
    """One writer at a time across processes (the server's jobs, the CLI): an flock on index/.lock."""
    root = index_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_unfinished_builds(data_dir: Path) -> list[Path]:
    """Build directories without a manifest: what a crash mid-build left. Call under the write lock."""
    root = index_root(data_dir)
    unfinished = [p for p in root.iterdir() if p.is_dir() and not (p / MANIFEST_FILE).exists()] if root.exists() else []
    for path in unfinished:
        logger.warning("removing unfinished build %s", path.name)
        shutil.rmtree(path, ignore_errors=True)
    return unfinished


def prune_builds(data_dir: Path, *, keep: int = 2) -> list[Path]:
    """Delete all but the newest ``keep`` builds, never the current one.

    The previous build is kept so that a server still holding it, or an
    operator rolling back, finds it intact.
    """
    current = current_build_dir(data_dir)
    builds = sorted((p for p in index_root(data_dir).iterdir() if (p / MANIFEST_FILE).exists()), reverse=True)
    removed = [p for p in builds[keep:] if p != current]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def current_format(data_dir: Path) -> int | None:
    """The format version of the current build, or None when there is none."""
    build_dir = current_build_dir(data_dir)
    return read_manifest(build_dir).format_version if build_dir else None


def read_manifest(build_dir: Path) -> IndexManifest:
    return IndexManifest.model_validate_json((build_dir / MANIFEST_FILE).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class LoadedIndex:
    build_dir: Path
    manifest: IndexManifest
    catalogue: SqliteCatalogue
    vectors: FaissVectorStore
    sentence_vectors: SentenceVectorStore
    lexical: Bm25LexicalStore

    def close(self) -> None:
        self.catalogue.close()


def load_index(data_dir: Path, *, embedder_name: str, dimension: int) -> LoadedIndex:
    """Open the current build read-only; refuse one built with another embedder."""
    build_dir = current_build_dir(data_dir)
    if build_dir is None:
        raise IndexNotFoundError(f"no index in {index_root(data_dir)}; run 'policyqa ingest' first")
    manifest = read_manifest(build_dir)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexFormatError(
            f"the index {manifest.build_id} has format {manifest.format_version}, this policyqa reads"
            f" {FORMAT_VERSION}: rebuild it with 'policyqa ingest'"
        )
    if manifest.embedder.name != embedder_name or manifest.embedder.dimension != dimension:
        raise IndexMismatchError(
            f"the index {manifest.build_id} was built with embedder {manifest.embedder.name!r}"
            f" ({manifest.embedder.dimension}-d) but {embedder_name!r} ({dimension}-d) is configured;"
            " rebuild it with 'policyqa ingest' or configure the same embedder"
        )
    if manifest.pipeline_version != PIPELINE_VERSION:
        logger.warning(
            "index %s was built by an older text pipeline (version %s, now %s); run 'policyqa ingest' to rebuild it",
            manifest.build_id,
            manifest.pipeline_version,
            PIPELINE_VERSION,
        )
    return LoadedIndex(
        build_dir=build_dir,
        manifest=manifest,
        catalogue=SqliteCatalogue(build_dir / CATALOGUE_FILE, read_only=True),
        vectors=FaissVectorStore.load(build_dir / VECTORS_FILE),
        sentence_vectors=SentenceVectorStore.load(build_dir / SENTENCES_FILE),
        lexical=Bm25LexicalStore.load(build_dir / LEXICAL_FILE),
    )
