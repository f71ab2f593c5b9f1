"""The index backends' contract (index/stores/contract.py) on the local segmented index and on Milvus."""

from __future__ import annotations

import secrets

import pytest

from index.stores.base import BackendConfig
from index.stores.contract import HashEmbedder, IndexBackendContract
from index.stores.factory import open_backend


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
