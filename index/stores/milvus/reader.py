"""An index that lives in Milvus: what ``load_index`` gives for a local one, read from collections any replica shares.

One deployment (``POLICYQA_MILVUS_PREFIX``) has these collections, each
holding every knowledge base's rows under its ``kb_id`` partition key:

- ``<prefix>_documents``, ``_texts``, ``_chunks``, ``_sentences``: the catalogue
  (``index/stores/milvus/catalogue.py``);
- ``<prefix>_vectors`` and ``_sentence_vectors``: dense vectors;
- ``<prefix>_bm25_rows`` and ``_bm25_terms``: BM25 (``index/stores/milvus/lexical.py``);
- ``<prefix>_meta``: per knowledge base its manifest (embedder, chunking), its
  generation (bumped by every committed change: replicas poll it) and the
  intents of changes under way; for all, the counter chunk and sentence ids
  come from.

Nothing of it is on the replica's disk: a replica with an empty data
directory of its own (its model files) serves at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from index.errors import IndexMismatchError, IndexNotFoundError
from index.stores.manifest import IndexManifest
from index.stores.milvus.catalogue import MilvusCatalogue, create_collection, quoted
from index.stores.milvus.lexical import MilvusLexicalStore
from index.stores.milvus.vectors import BATCH_ROWS, DEFAULT_KB, KB_FIELD, MilvusVectorStore, _client, kb_filter

logger = logging.getLogger(__name__)

CACHED_VECTORS = 20_000  # vectors a store keeps once read (each 1.5 KB at 384 dimensions)
ALL_KBS = "_all"  # the partition of rows that belong to no one knowledge base (the id counter)
META_FIELDS = [("key", "VARCHAR", {"max_length": 1200}), ("kind", "VARCHAR", {"max_length": 32}),
               ("value", "VARCHAR", {"max_length": 65_535})]  # fmt: skip


@dataclass(frozen=True)
class MilvusTarget:
    """Where one knowledge base's index lives."""

    uri: str
    prefix: str
    kb_id: str = DEFAULT_KB

    def for_kb(self, kb_id: str) -> MilvusTarget:
        return MilvusTarget(self.uri, self.prefix, kb_id)


class MilvusMeta:
    """The meta collection: manifests, generations, intents, and the id counter."""

    def __init__(self, target: MilvusTarget) -> None:
        self.target = target
        self.name = f"{target.prefix}_meta"
        self._client = _client(target.uri)
        if not self._client.has_collection(self.name):
            create_collection(self._client, self.name, META_FIELDS, "key")
        self._client.load_collection(self.name)

    def _key(self, kind: str, kb_id: str | None = None, name: str = "") -> str:
        return f"{kb_id or self.target.kb_id}/{kind}/{name}"

    def _read(self, kb_id: str, keys: list[str]) -> dict[str, dict]:
        # The keys hold the kb_id: a bare key lookup (milvus-lite scans for any other filter).
        rows = self._client.query(self.name, filter=f"key in [{quoted(keys)}]", output_fields=["value", KB_FIELD])
        return {row["key"]: json.loads(row["value"]) for row in rows if row[KB_FIELD] == kb_id}

    def _write(self, kb_id: str, kind: str, key: str, value: dict) -> None:
        row = {"key": key, KB_FIELD: kb_id, "kind": kind, "value": json.dumps(value), "unused": [0.0, 0.0]}
        self._client.upsert(self.name, [row])

    def state(self) -> tuple[dict | None, int]:
        """(the manifest, or None when the knowledge base has no index; its generation), in one round trip."""
        manifest, generation = self._key("manifest"), self._key("generation")
        found = self._read(self.target.kb_id, [manifest, generation])
        return found.get(manifest), int(found.get(generation, {}).get("generation", 0))

    def generation(self) -> int:
        return self.state()[1]

    def write_manifest(self, manifest: dict) -> None:
        self._write(self.target.kb_id, "manifest", self._key("manifest"), manifest)

    def bump(self) -> int:
        """A change was committed: every replica reloads its snapshot when it next looks."""
        generation = self.generation() + 1
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self._write(self.target.kb_id, "generation", self._key("generation"), {"generation": generation, "at": at})
        return generation

    def reserve(self, chunks: int, sentences: int) -> tuple[int, int]:
        """The first of ``chunks`` new chunk ids and of ``sentences`` sentence ids, taken before any is
        written (a writer killed after leaves a gap, never an id used twice). Call under the write lock."""
        key = self._key("counter", ALL_KBS)
        counter = self._read(ALL_KBS, [key]).get(key, {"chunk": 1, "sentence": 1})
        taken = {"chunk": counter["chunk"] + chunks, "sentence": counter["sentence"] + sentences}
        self._write(ALL_KBS, "counter", key, taken)
        return counter["chunk"], counter["sentence"]

    def intend(self, doc_id: str, version: str) -> None:
        """Rows of (doc_id, version) are about to be written or removed: unless that version ends up
        committed, the next writer removes them (``index/stores/milvus/writer.py``)."""
        self.intend_all([(doc_id, version)])

    def intend_all(self, pairs: list[tuple[str, str]]) -> None:
        rows = [
            {"key": self._key("intent", name=f"{doc_id}/{version}"), KB_FIELD: self.target.kb_id, "kind": "intent",
             "value": json.dumps({"doc_id": doc_id, "version": version}), "unused": [0.0, 0.0]}
            for doc_id, version in pairs
        ]  # fmt: skip
        for at in range(0, len(rows), BATCH_ROWS):
            self._client.upsert(self.name, rows[at : at + BATCH_ROWS])

    def intents(self) -> list[tuple[str, str]]:
        rows = self._client.query(self.name, filter=kb_filter(self.target.kb_id, 'kind == "intent"'),
                                  output_fields=["value"])  # fmt: skip
        return [(v["doc_id"], v["version"]) for v in (json.loads(row["value"]) for row in rows)]

    def done(self, doc_id: str, version: str) -> None:
        self.done_all([(doc_id, version)])

    def done_all(self, pairs: list[tuple[str, str]]) -> None:
        keys = [self._key("intent", name=f"{doc_id}/{version}") for doc_id, version in pairs]
        for at in range(0, len(keys), BATCH_ROWS):
            part = quoted(keys[at : at + BATCH_ROWS])
            self._client.delete(self.name, filter=kb_filter(self.target.kb_id, f"key in [{part}]"))

    def clear(self) -> None:
        self._client.delete(self.name, filter=kb_filter(self.target.kb_id))


class MilvusStores:
    """The stores of one knowledge base, opened once (each holds a client) and shared by its snapshots."""

    def __init__(self, target: MilvusTarget, dimension: int) -> None:
        uri, prefix, kb = target.uri, target.prefix, target.kb_id
        self.target, self.dimension = target, dimension
        self.meta = MilvusMeta(target)
        self.catalogue = MilvusCatalogue(uri=uri, prefix=prefix, kb_id=kb)
        self.vectors = MilvusVectorStore(dimension, uri=uri, collection=f"{prefix}_vectors", kb_id=kb,
                                         strict=False, cached_rows=CACHED_VECTORS)  # fmt: skip
        self.sentence_vectors = MilvusVectorStore(dimension, uri=uri, collection=f"{prefix}_sentence_vectors",
                                                  kb_id=kb, strict=False, cached_rows=CACHED_VECTORS)  # fmt: skip
        self.lexical = MilvusLexicalStore(uri=uri, name=f"{prefix}_bm25", kb_id=kb)

    def clear(self) -> None:
        """Every row of this knowledge base, in every collection (the knowledge base was deleted)."""
        self.meta.clear()  # its manifest first: it no longer exists for any replica
        for store in (self.vectors, self.sentence_vectors, self.lexical, self.catalogue):
            store.clear()


@dataclass(frozen=True)
class MilvusIndex:
    """One generation of a knowledge base in Milvus: an ``IndexReader`` (``index/stores/base.py``)."""

    manifest: IndexManifest
    catalogue: MilvusCatalogue
    vectors: MilvusVectorStore
    sentence_vectors: MilvusVectorStore
    lexical: MilvusLexicalStore  # a snapshot of its statistics
    stores: MilvusStores
    generation: int

    def size_bytes(self) -> int:
        return 0  # nothing of the index is on this machine's disk

    def close(self) -> None:
        """Nothing to close: the stores stay open for the next snapshot."""


def build_id(target: MilvusTarget, generation: int) -> str:
    return f"milvus-{target.kb_id}-{generation}"


def load_milvus_index(
    target: MilvusTarget, *, embedder_name: str, dimension: int, reuse: MilvusIndex | None = None
) -> MilvusIndex:
    """The knowledge base's current generation; refuses one built with another embedder."""
    stores = reuse.stores if reuse is not None else MilvusStores(target, dimension)
    found, generation = stores.meta.state()
    if found is None:
        raise IndexNotFoundError(f"no index for knowledge base {target.kb_id!r} in Milvus; run 'policyqa ingest'")
    catalogue = stores.catalogue.snapshot()
    manifest = IndexManifest.model_validate(found).model_copy(update={
        "build_id": build_id(target, generation),
        "counts": {"documents": catalogue.document_count(), "chunks": catalogue.count()},
    })  # fmt: skip
    if manifest.embedder.name != embedder_name or manifest.embedder.dimension != dimension:
        raise IndexMismatchError(
            f"knowledge base {target.kb_id!r} in Milvus was built with {manifest.embedder.name!r}"
            f" ({manifest.embedder.dimension}-d) but {embedder_name!r} ({dimension}-d) is configured"
        )
    return MilvusIndex(manifest, catalogue, stores.vectors, stores.sentence_vectors,
                       stores.lexical.snapshot(), stores, generation)  # fmt: skip
