"""Dense vectors in a Milvus collection: the same verbs as ``FaissVectorStore``, over the network.

Works against a ``milvus-lite server`` (``pip install -e '.[milvus]'``) or a
Milvus standalone or distributed cluster (``http://host:19530``): one
collection of ``id`` (INT64, the chunk id) and ``vector`` (FLOAT_VECTOR),
a FLAT index searched by inner product, strong consistency so that a write
is seen by the next read from any client. Each row carries ``kb_id``, the
collection's partition key: a store sees only its knowledge base's rows, so
many knowledge bases share one collection (one partition each). ``save`` writes where the
collection is, not the vectors: they live in Milvus.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from index.errors import ConfigurationError
from index.stores.vectors import VectorHits, checked_rows

ID_FIELD, VECTOR_FIELD, KB_FIELD = "id", "vector", "kb_id"
KB_ID_CHARS = 64
DEFAULT_KB = "default"
MAX_LIMIT = 16_384  # Milvus's largest top-k
BATCH_ROWS = 2_000  # rows per insert or query call, well inside the gRPC message limit


def _client(uri: str):
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError("the Milvus store needs: pip install -e '.[milvus]'") from exc
    # No keepalive pings on an idle connection: a milvus-lite server (grpcio's defaults) answers a
    # third ping without calls with GOAWAY "too many pings", and the next call then fails.
    return MilvusClient(uri=uri, grpc_options={"grpc.keepalive_permit_without_calls": 0})


def kb_filter(kb_id: str, condition: str = "") -> str:
    """A filter on one knowledge base's rows (the partition key), and a further condition if given."""
    scope = f"{KB_FIELD} == {json.dumps(kb_id)}"
    return f"{scope} and ({condition})" if condition else scope


def add_kb_field(schema) -> None:
    from pymilvus import DataType

    schema.add_field(KB_FIELD, DataType.VARCHAR, max_length=KB_ID_CHARS, is_partition_key=True)


class MilvusVectorStore:
    """Inner-product search over one Milvus collection, ids kept as given."""

    def __init__(
        self, dimension: int, *, uri: str, collection: str, kb_id: str = DEFAULT_KB, strict: bool = True,
        cached_rows: int = 0,
    ) -> None:  # fmt: skip
        """``strict=False`` (a server's store, read while another replica deletes rows, which are never
        cited anyway): ``vectors`` gives zeros for ids not stored instead of raising, and keeps up to
        ``cached_rows`` rows it read (ids are never reused there, so a row read stays right)."""
        self.dimension, self.uri, self.collection, self.kb_id = dimension, uri, collection, kb_id
        self.strict = strict
        self.cached_rows = 0 if strict else cached_rows
        self._cache: OrderedDict[int, list[float]] = OrderedDict()
        self._client = _client(uri)
        if not self._client.has_collection(collection):
            self._create()
        self._client.load_collection(collection)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        add_kb_field(schema)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dimension)
        index = self._client.prepare_index_params()
        index.add_index(VECTOR_FIELD, index_type="FLAT", metric_type="IP")
        self._client.create_collection(self.collection, schema=schema, index_params=index, consistency_level="Strong")

    @property
    def kind(self) -> str:
        return "milvus-flat"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store the rows; an id stored before is replaced (upsert)."""
        ids, vectors = checked_rows(ids, vectors, self.dimension)
        for at in range(0, len(ids), BATCH_ROWS):
            rows = [
                {ID_FIELD: int(i), KB_FIELD: self.kb_id, VECTOR_FIELD: v.tolist()}
                for i, v in zip(ids[at : at + BATCH_ROWS], vectors[at : at + BATCH_ROWS], strict=True)
            ]
            self._client.upsert(self.collection, rows)
        self._client.flush(self.collection)  # unflushed rows are searched by brute force, many times slower

    def delete(self, ids: np.ndarray) -> int:
        present = self._present(np.ascontiguousarray(ids, dtype=np.int64))
        if present:
            self._client.delete(self.collection, ids=present)
        return len(present)

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> VectorHits:
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dimension:
            raise ValueError(f"expected a query of dimension {self.dimension}, got {query.shape[0]}")
        k = min(k, MAX_LIMIT)  # not counted first: a count with the kb_id filter scans on milvus-lite
        if allowed_ids is not None:
            k = min(k, len(allowed_ids))
        if k <= 0:
            return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        found = self._client.search(
            self.collection, data=[query.tolist()], limit=k, anns_field=VECTOR_FIELD,
            filter=kb_filter(self.kb_id, _id_filter(allowed_ids) if allowed_ids is not None else ""),
            search_params={"metric_type": "IP"},
        )[0]  # fmt: skip
        ids = np.array([hit["id"] for hit in found], dtype=np.int64)
        scores = np.array([hit["distance"] for hit in found], dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        return VectorHits(ids[order], scores[order])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of the given ids, in their order (each id must be present)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        by_id = {i: self._cache[i] for i in ids.tolist() if i in self._cache}
        wanted = np.array([i for i in dict.fromkeys(ids.tolist()) if i not in by_id], dtype=np.int64)
        for at in range(0, len(wanted), BATCH_ROWS):
            part = wanted[at : at + BATCH_ROWS]
            for row in self._get(part, [VECTOR_FIELD]):
                by_id[int(row[ID_FIELD])] = row[VECTOR_FIELD]
                self._keep(int(row[ID_FIELD]), row[VECTOR_FIELD])
        missing = [int(i) for i in ids if int(i) not in by_id]
        if missing and self.strict:
            raise KeyError(f"ids not stored: {missing[:5]}")
        zeros = [0.0] * self.dimension
        return np.array([by_id.get(int(i), zeros) for i in ids], dtype=np.float32)

    def _keep(self, row_id: int, vector: list[float]) -> None:
        if self.cached_rows:
            self._cache[row_id] = vector
            while len(self._cache) > self.cached_rows:
                self._cache.popitem(last=False)

    def count(self) -> int:
        rows = self._client.query(self.collection, filter=kb_filter(self.kb_id), output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def nbytes(self) -> int:
        return 0  # held by Milvus, not by this process

    def save(self, path: Path) -> None:
        pointer = {"uri": self.uri, "collection": self.collection, "dimension": self.dimension, "kb_id": self.kb_id}
        Path(path).write_text(json.dumps(pointer), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> MilvusVectorStore:
        pointer = json.loads(Path(path).read_text(encoding="utf-8"))
        kb_id = pointer.get("kb_id", DEFAULT_KB)
        return cls(int(pointer["dimension"]), uri=pointer["uri"], collection=pointer["collection"], kb_id=kb_id)

    def drop(self) -> None:
        """The whole collection, every knowledge base's rows."""
        self._client.drop_collection(self.collection)

    def clear(self) -> None:
        """This knowledge base's rows (a knowledge base deleted)."""
        self._client.delete(self.collection, filter=kb_filter(self.kb_id))

    def _present(self, ids: np.ndarray) -> list[int]:
        present: list[int] = []
        for at in range(0, len(ids), BATCH_ROWS):
            present += [int(row[ID_FIELD]) for row in self._get(ids[at : at + BATCH_ROWS], [])]
        return present

    def _get(self, ids: np.ndarray, fields: list[str]) -> list[dict]:
        """Rows by id, this knowledge base's only. By primary key rather than a filter with the kb_id:
        milvus-lite scans the collection for any filter but a bare list of primary keys."""
        rows = self._client.get(self.collection, ids=[int(i) for i in ids], output_fields=[*fields, KB_FIELD])
        return [row for row in rows if row[KB_FIELD] == self.kb_id]


def _id_filter(ids: np.ndarray) -> str:
    return f"{ID_FIELD} in [{','.join(str(int(i)) for i in ids)}]"
