"""Where a knowledge base's index lives, decided once: the local store (DATA_DIR) or Milvus.

The engine, the knowledge bases and the CLI ask here instead of calling the
local storage functions, so that ``POLICYQA_STORE=milvus`` changes nothing
else. Settings here are a knowledge base's own (its ``data_dir``).
"""

from __future__ import annotations

from pathlib import Path

from index.stores.local.generations import current_build_dir, current_format, load_index, read_manifest
from index.stores.manifest import FORMAT_VERSION
from index.stores.milvus.reader import MilvusTarget, target_of
from service.stores.registry import DEFAULT_KB


def milvus_target(settings, kb_id: str = DEFAULT_KB) -> MilvusTarget | None:
    return target_of(settings, kb_id)


def has_index(settings, kb_id: str = DEFAULT_KB) -> bool:
    target = milvus_target(settings, kb_id)
    if target is None:
        return current_build_dir(settings.data_dir) is not None
    from index.stores.milvus.reader import has_milvus_index

    return has_milvus_index(target)


def stale_format(settings) -> bool:
    """A local index of another format (Milvus rows have one format)."""
    return settings.store == "local" and current_format(settings.data_dir) not in (None, FORMAT_VERSION)


def open_index(settings, kb_id: str = DEFAULT_KB, *, embedder_name: str, dimension: int, reuse=None):
    """The current index, local (``LoadedIndex``) or in Milvus (``MilvusIndex``)."""
    target = milvus_target(settings, kb_id)
    if target is None:
        return load_index(settings.data_dir, embedder_name=embedder_name, dimension=dimension, reuse=reuse)
    from index.stores.milvus.reader import load_milvus_index

    return load_milvus_index(target, settings.data_dir, embedder_name=embedder_name, dimension=dimension, reuse=reuse)


def current_build_id(settings, index) -> str | None:
    """The id of the build a reader should serve now (compared with the one it serves)."""
    stores = getattr(index, "stores", None)
    if stores is None:
        build_dir = current_build_dir(settings.data_dir)
        return build_dir.name if build_dir is not None else None
    from index.stores.milvus.reader import build_id

    return build_id(stores.target, stores.meta.generation())  # one small query: cheap enough to poll


def build_corpus(settings, kb_id: str, embedder, *, docs_dir: Path, show_progress: bool = False) -> None:
    """Index the corpus directory (the first start, or 'policyqa ingest' on an empty store)."""
    target = milvus_target(settings, kb_id)
    options = {"chunking": settings.chunking(), "show_progress": show_progress, "late_chunking": settings.late_chunking}
    if target is None:
        from index.stores.local.build import build_index

        build_index(docs_dir=docs_dir, data_dir=settings.data_dir, embedder=embedder, **options)
        return
    from index.stores.milvus.writer import ingest_milvus

    ingest_milvus(target, data_dir=settings.data_dir, embedder=embedder, docs_dir=docs_dir, **options)


def create_empty(settings, kb_id: str, embedder) -> None:
    """An empty index for a new knowledge base."""
    target = milvus_target(settings, kb_id)
    if target is None:
        from index.stores.local.build import build_index

        build_index(sources=[], data_dir=settings.data_dir, embedder=embedder, chunking=settings.chunking(),
                    show_progress=False)  # fmt: skip
        return
    from index.stores.milvus.writer import change_milvus

    change_milvus(target, data_dir=settings.data_dir, embedder=embedder, chunking=settings.chunking(),
                  late_chunking=settings.late_chunking)  # fmt: skip


def drop(settings, kb_id: str, dimension: int) -> None:
    """A deleted knowledge base's rows in Milvus (its local files are the caller's)."""
    target = milvus_target(settings, kb_id)
    if target is not None:
        from index.stores.milvus.writer import drop_milvus_kb

        drop_milvus_kb(target, dimension)


def stored_counts(settings, kb_id: str) -> dict:
    """Documents and chunks of a knowledge base not loaded, without loading it."""
    target = milvus_target(settings, kb_id)
    if target is None:
        build_dir = current_build_dir(settings.data_dir)
        return read_manifest(build_dir).counts if build_dir is not None else {}
    from index.stores.milvus.catalogue import MilvusCatalogue

    catalogue = MilvusCatalogue(uri=target.uri, prefix=target.prefix, kb_id=kb_id)
    return {"documents": catalogue.document_count(), "chunks": catalogue.count()}
