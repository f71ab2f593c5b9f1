"""Changes to an index in Milvus: add, replace and delete documents, visible to every replica within a second.

The documents are read, cleaned, chunked and embedded as a local build does
(``index/stores/local/build.py``'s ``prepare_all``, ``index/ingest/embed.py``), then written
without transactions, in an order that makes every step safe to stop at:

- add: an intent (doc_id, version) in the meta collection, then the rows
  (text, chunks, sentences), vectors and BM25 rows, then the document row
  LAST: it commits them. Readers keep only rows of a committed version;
- delete: an intent, the document row FIRST (the document is gone for every
  reader at once), then its vectors, BM25 rows and catalogue rows;
- replace: the new version is added and committed, then the old one deleted;
- a change's documents are written together (one bulk write per store, then
  their document rows in one upsert: each row commits its own document);
- each change then bumps the knowledge base's generation, which every
  replica polls.

A writer killed anywhere leaves an intent behind: the next writer removes the
rows of every intent whose version is not the committed one (``sweep``). Ids
come from a counter in Milvus, taken before they are written. Deletes are
final: the rows are gone from Milvus, for every replica and after restarts.
There is nothing to merge: Milvus compacts its own segments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import DocumentFailure, read_corpus
from index.ingest.documents import SourceDocument
from index.ingest.embed import Matrices, embed_missing
from index.ingest.passages import PreparedDocument, lexical_text
from index.ingest.prepare import BuildOptions, late_chunking_for, prepare_all
from index.locks import file_lock
from index.stores.base import ChangeReport
from index.stores.changes import corpus_changes, refuse_duplicate_ids
from index.stores.manifest import ChunkingInfo, EmbedderInfo, IndexManifest, build_versions
from index.stores.milvus.lock import ensure_locks_held, lock_collection, milvus_writer_lock
from index.stores.milvus.reader import MilvusStores, MilvusTarget, build_id
from index.stores.records import document_times, now_iso

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def write_lock(target: MilvusTarget, data_dir: Path) -> Iterator[None]:
    """One writer of a knowledge base's rows at a time, across replicas: the Milvus lock
    ``index:<prefix>:<kb_id>`` (``index/stores/milvus/lock.py``), inside this machine's own lock.

    A service job holds its knowledge base's ``kb:`` lock around this one (``service/stores/factory.py``);
    ``policyqa ingest`` takes only this one. Always in that order, so the two cannot deadlock."""
    with (
        file_lock(Path(data_dir) / "index" / ".lock"),
        milvus_writer_lock(
            target.uri, name=f"index:{target.prefix}:{target.kb_id}", collection=lock_collection(target.prefix)
        ),
    ):
        yield


def change_milvus(
    target: MilvusTarget,
    *,
    data_dir: Path,
    embedder: Embedder,
    sources: list[SourceDocument] = (),
    remove: Collection[str] = (),
    chunking: ChunkingParams = ChunkingParams(),
    show_progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    late_chunking: bool = False,
    keep_going: bool = False,
) -> ChangeReport:
    """Add or replace ``sources`` and delete the ids in ``remove``, in Milvus (``IndexWriter.change``).

    With ``keep_going``, a source that cannot be prepared is left out (its earlier version removed all the
    same) and listed in the report's ``failed``."""
    started = time.perf_counter()
    sources = refuse_duplicate_ids(sources)
    options = BuildOptions(show_progress, on_progress, 0, late_chunking_for(late_chunking, embedder), None)  # no FAISS
    failures: list[DocumentFailure] | None = [] if keep_going else None
    prepared, _, _ = prepare_all(sources, chunking, options, embedder=embedder, failures=failures)
    remove = set(remove) | {f.doc_id for f in failures or ()}
    matrices = _embedded(prepared, embedder, options)  # before the lock: the other writers go on meanwhile
    with write_lock(target, data_dir):
        stores = MilvusStores(target, embedder.dimension)
        ensure_manifest(stores, embedder, chunking, options)
        if sweep(stores):
            stores.meta.bump()  # what a killed writer had committed, if anything, is seen from now on
        _write_documents(stores, prepared, matrices)
        dropped = _delete_documents(stores, remove - {d.source.doc_id for d in prepared})
        ensure_locks_held()
        generation = stores.meta.bump()
    catalogue = stores.catalogue
    logger.info("milvus %s: +%d documents, -%d documents", target.kb_id, len(prepared), dropped)
    return ChangeReport(
        build_id(target, generation), catalogue.document_count(), catalogue.count(),
        sum(len(d.sentences) for d in prepared), len(prepared), dropped,
        embedded_passages=len(matrices.chunks) + len(matrices.sentences),
        timings_s={"total": round(time.perf_counter() - started, 3)}, failed=tuple(failures or ()),
    )  # fmt: skip


def _embedded(prepared: list[PreparedDocument], embedder: Embedder, options: BuildOptions) -> Matrices:
    """Every chunk's and sentence's vector, row = id - 1 (``prepare_all`` numbers them from 1)."""
    n_chunks, n_sentences = sum(len(d.chunks) for d in prepared), sum(len(d.sentences) for d in prepared)
    matrices = Matrices(np.zeros((n_chunks, embedder.dimension), np.float32),
                        np.zeros((n_sentences, embedder.dimension), np.float32))  # fmt: skip
    if prepared:
        embed_missing(prepared, matrices, embedder, late=options.late_chunking,
                      show_progress=options.show_progress, on_progress=options.on_progress)  # fmt: skip
    return matrices


def ensure_manifest(stores: MilvusStores, embedder: Embedder, chunking: ChunkingParams, options) -> None:
    """The knowledge base's manifest, written on its first change; a later change must use its settings."""
    found, _ = stores.meta.state()
    wanted = IndexManifest(
        build_id="", created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        embedder=EmbedderInfo(name=embedder.name, dimension=embedder.dimension),
        chunking=ChunkingInfo(**vars(chunking)), counts={}, timings_s={},
        versions=build_versions(embedder, options.sentence_vectors), vector_index="milvus-flat",
    )  # fmt: skip
    if found is None:
        stores.meta.write_manifest(wanted.model_dump(mode="json"))
        return
    manifest = IndexManifest.model_validate(found)
    same_kind = manifest.versions.get("sentence_vectors") == options.sentence_vectors
    if not manifest.reusable_by(wanted.embedder, wanted.chunking) or not same_kind:
        raise ConfigurationError(
            f"knowledge base {stores.target.kb_id!r} in Milvus was built with other settings (embedder"
            f" {manifest.embedder.name}, chunking {manifest.chunking}): configure the same, or use another"
            " POLICYQA_MILVUS_PREFIX for an index with these"
        )


def sweep(stores: MilvusStores) -> int:
    """Remove the rows that writers killed mid-change left (see the module's docstring); how many versions."""
    stores.catalogue.refresh()
    swept = 0
    for doc_id, version in stores.meta.intents():
        if stores.catalogue.version(doc_id) == version:
            stores.meta.done(doc_id, version)  # committed: the writer died after its commit
            continue
        logger.warning("removing %s (version %s), left half-written by a writer that stopped", doc_id, version)
        _remove_version(stores, doc_id, version)
        swept += 1
    return swept


def _write_documents(stores: MilvusStores, prepared: list[PreparedDocument], matrices: Matrices) -> None:
    """Every document's rows, vectors and BM25 rows in bulk, then their document rows (the commits), then
    the versions they replace."""
    if not prepared:
        return
    ensure_locks_held()  # a writer whose lease lapsed (another may hold the lock now) writes nothing more
    first_chunk, first_sentence = stores.meta.reserve(len(matrices.chunks), len(matrices.sentences))
    versions = {d.source.doc_id: secrets.token_hex(8) for d in prepared}
    previous = {doc_id: stores.catalogue.version(doc_id) for doc_id in versions}
    stores.meta.intend_all(list(versions.items()))
    texts, commits, now = [], [], now_iso()
    times = {
        d.source.doc_id: document_times(stores.catalogue.document(d.source.doc_id), content_hash=d.content_hash,
                                        added_at=d.source.added_at, now=now)
        for d in prepared
    }  # fmt: skip
    for document in prepared:  # prepare_all numbers chunks and sentences from 1 in this order: row = id - 1
        doc_id = document.source.doc_id
        chunks = [dataclasses.replace(c, chunk_id=int(c.chunk_id - 1 + first_chunk)) for c in document.chunks]
        sentences = [(int(i - 1 + first_sentence), a, b) for i, a, b in document.sentences]
        stores.catalogue.add_rows(doc_id=doc_id, version=versions[doc_id], text=document.text, chunks=chunks,
                                  sentences=sentences)  # fmt: skip
        texts += [lexical_text(document.source.title, c.text) for c in chunks]
        commits.append(_document_row(stores, document, versions[doc_id], chunks, sentences))
    chunk_ids = np.arange(first_chunk, first_chunk + len(matrices.chunks), dtype=np.int64)
    stores.vectors.add(chunk_ids, matrices.chunks)
    sentence_ids = np.arange(first_sentence, first_sentence + len(matrices.sentences), dtype=np.int64)
    stores.sentence_vectors.add(sentence_ids, matrices.sentences)
    stores.lexical.add(chunk_ids.tolist(), texts)
    ensure_locks_held()  # the commit: after a lapse, the rows written stay uncommitted, swept by the next writer
    commit_documents(stores, commits, times)
    replaced = [(doc_id, version) for doc_id, version in previous.items() if version is not None]
    stores.meta.intend_all(replaced)
    for doc_id, version in replaced:  # replacements: the old versions go once the new ones are in
        _remove_version(stores, doc_id, version)
    stores.meta.done_all(list(versions.items()))


def _document_row(stores: MilvusStores, document: PreparedDocument, version: str, chunks, sentences) -> dict:
    source = document.source
    return stores.catalogue.document_row(
        doc_id=source.doc_id, version=version, title=source.title, source=source.source,
        content_hash=document.content_hash, origin=source.origin, chunk_ids=[c.chunk_id for c in chunks],
        sentence_ids=[s[0] for s in sentences], text_chars=len(document.text),
        page_spans=document.page_spans, page_confidence=source.page_confidence,
    )  # fmt: skip


def commit_documents(stores: MilvusStores, rows: list[dict], times: dict[str, tuple[str, str]]) -> None:
    """The document rows: from here on, every reader (once it sees the new generation) has these versions."""
    stores.catalogue.commit_all(rows, times)


def _delete_documents(stores: MilvusStores, doc_ids: set[str]) -> int:
    deleted = 0
    for doc_id in sorted(stores.catalogue.known_doc_ids(doc_ids)):
        version = stores.catalogue.version(doc_id)
        ensure_locks_held()
        stores.meta.intend(doc_id, version)
        stores.catalogue.retract([doc_id])  # gone for every reader from here on
        _remove_version(stores, doc_id, version)
        deleted += 1
    return deleted


def _remove_version(stores: MilvusStores, doc_id: str, version: str) -> None:
    """Vectors and BM25 rows first, the catalogue rows (what a sweep finds them by) last, then the intent."""
    chunk_ids, sentence_ids = stores.catalogue.rows_of(doc_id, version)
    stores.vectors.delete(np.array(chunk_ids, dtype=np.int64))
    stores.sentence_vectors.delete(np.array(sentence_ids, dtype=np.int64))
    stores.lexical.delete(chunk_ids)
    stores.catalogue.remove_rows(doc_id, version)
    stores.meta.done(doc_id, version)


def ingest_milvus(target: MilvusTarget, *, data_dir: Path, embedder: Embedder, docs_dir: Path, **options):
    """``policyqa ingest`` into Milvus: only added, edited or removed corpus files are written."""
    sources, unread = read_corpus(docs_dir)  # an unreadable file fails alone (and is not in the index after)
    stores = MilvusStores(target, embedder.dimension)
    changes = corpus_changes(stores.catalogue, sources)
    report = change_milvus(target, data_dir=data_dir, embedder=embedder, sources=changes.changed,
                           remove=changes.removed, keep_going=True, **options)  # fmt: skip
    return dataclasses.replace(report, unchanged=changes.unchanged, failed=(*unread, *report.failed))


def drop_milvus_kb(target: MilvusTarget, dimension: int) -> None:
    """Every row of a deleted knowledge base (its manifest first, so no replica loads it meanwhile)."""
    MilvusStores(target, dimension).clear()
