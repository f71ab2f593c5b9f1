"""What an index records about itself, whatever its backend: embedder, chunking, counts, versions, segments.

A local generation writes it as manifest.json; Milvus keeps it in its meta collection.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Iterable

import faiss
import numpy as np
from pydantic import BaseModel

from index.embedders.base import Embedder


class SegmentInfo(BaseModel):
    segment_id: str
    first_chunk: int  # chunk ids in [first_chunk, end_chunk)
    end_chunk: int
    first_sentence: int  # sentence ids in [first_sentence, end_sentence), one row each in sentences.npy
    end_sentence: int
    documents: int
    chunks: int
    vector_index: str = "exact"


class Tombstone(BaseModel):
    """Documents deleted from one segment: their chunk ids, and the BM25 document frequencies they held."""

    doc_ids: list[str] = []
    chunk_ids: list[int] = []
    df: dict[str, int] = {}

    def extended(self, doc_ids: Iterable[str], chunk_ids: Iterable[int], df: Counter) -> Tombstone:
        total = Counter(self.df)
        total.update(df)
        return Tombstone(
            doc_ids=[*self.doc_ids, *doc_ids], chunk_ids=[*self.chunk_ids, *map(int, chunk_ids)], df=dict(total)
        )


# 2: documents carry their origin and page spans; 3: BM25 as arrays, sentence vectors as .npy;
# 4: segments and tombstones listed by a generation's manifest
FORMAT_VERSION = 4
# Bump when cleaning, chunking or embedding input changes, so a rebuild does
# not reuse vectors computed from differently prepared text.
PIPELINE_VERSION = 4


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
    segments: list[SegmentInfo] = []  # in chunk-id order
    tombstones: dict[str, Tombstone] = {}  # segment id -> what was deleted from it
    next_chunk_id: int = 1
    next_sentence_id: int = 1

    def reusable_by(self, embedder: EmbedderInfo, chunking: ChunkingInfo) -> bool:
        """Whether a new build with these settings may copy this build's chunks and vectors."""
        return (
            self.embedder == embedder
            and self.chunking == chunking
            and self.pipeline_version == PIPELINE_VERSION
            and self.format_version == FORMAT_VERSION
        )


def build_versions(embedder: Embedder, sentence_vectors: str) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "embedder_backend": getattr(embedder, "backend", "") or type(embedder).__name__,
        "sentence_vectors": sentence_vectors,
    }
