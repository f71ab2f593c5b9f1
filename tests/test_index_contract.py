"""The index backends' contract (index/stores/contract.py) on the local segmented index and on Milvus."""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import pytest

from index.stores.base import BackendConfig
from index.stores.contract import IndexBackendContract
from index.stores.factory import open_backend


class HashEmbedder:
    """Vectors from a hash of the text: the same text, the same vector, and no model to load."""

    name, dimension, max_tokens = "hash-384", 384, 512

    def embed_passages(self, texts):
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        rows = np.array([np.random.default_rng(s).normal(size=384) for s in seeds], dtype=np.float32)
        rows = rows.reshape(len(texts), 384)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)

    embed_queries = embed_passages


@pytest.fixture(scope="module")
def embedder():
    return HashEmbedder()


class TestLocalBackend(IndexBackendContract):
    @pytest.fixture
    def make_backend(self, tmp_path):
        return lambda kb_id: open_backend(BackendConfig("local", tmp_path / kb_id, kb_id))


class TestMilvusBackend(IndexBackendContract):
    @pytest.fixture
    def make_backend(self, tmp_path, milvus_uri):
        prefix = f"contract{secrets.token_hex(4)}"  # a deployment of its own: its collections start empty
        return lambda kb_id: open_backend(
            BackendConfig("milvus", tmp_path / kb_id, kb_id, milvus_uri=milvus_uri, milvus_prefix=prefix)
        )


def test_an_unknown_backend_is_refused(tmp_path):
    from index.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown index backend"):
        open_backend(BackendConfig("elasticsearch", tmp_path))  # type: ignore[arg-type]
