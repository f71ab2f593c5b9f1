"""A chunk corrected in Milvus: its document written again as a replace writes it, only the chunk embedded.

The corrected document is made from the committed rows (``index/stores/chunk_edits.py``), then written under
the writer lock as ``change_milvus`` writes a replacement: the new version's rows, its document row (the
commit), the old version's rows removed, the generation bumped.
"""

from __future__ import annotations

from pathlib import Path

from index.embedders.base import Embedder
from index.errors import ConfigurationError, IndexNotFoundError
from index.ingest.embed import Matrices
from index.stores.chunk_edits import ChunkCorrection, corrected_document
from index.stores.manifest import IndexManifest
from index.stores.milvus.lock import ensure_locks_held
from index.stores.milvus.reader import MilvusStores, MilvusTarget, build_id
from index.stores.milvus.writer import _write_documents, sweep, write_lock


def correct_chunk_milvus(
    target: MilvusTarget, *, data_dir: Path, embedder: Embedder, doc_id: str, ordinal: int, text: str
) -> ChunkCorrection:
    with write_lock(target, data_dir):
        stores = MilvusStores(target, embedder.dimension)
        found, _ = stores.meta.state()
        if found is None:
            raise IndexNotFoundError(f"no index for knowledge base {target.kb_id!r} in Milvus")
        manifest = IndexManifest.model_validate(found)
        if (manifest.embedder.name, manifest.embedder.dimension) != (embedder.name, embedder.dimension):
            raise ConfigurationError(f"the index was built with {manifest.embedder.name}, not {embedder.name}")
        if sweep(stores):
            stores.meta.bump()
        stores.catalogue.refresh()
        late = manifest.versions.get("sentence_vectors") == "late-chunked"
        corrected = corrected_document(stores.catalogue, stores.vectors, stores.sentence_vectors, doc_id=doc_id,
                                       ordinal=ordinal, text=text, embedder=embedder, late=late)  # fmt: skip
        document = corrected.document
        _write_documents(stores, [document], Matrices(document.chunk_vectors, document.sentence_vectors))
        ensure_locks_held()
        generation = stores.meta.bump()
        stores.catalogue.refresh()
        chunk_ids = stores.catalogue.chunk_ids([doc_id])  # reserved in one run, in the chunks' order
    return ChunkCorrection(build_id(target, generation), doc_id, ordinal, int(chunk_ids[ordinal]),
                           corrected.before, document.chunks[ordinal].text, corrected.embedded_passages)  # fmt: skip
